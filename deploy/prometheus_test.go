package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

const (
	rulesFile     = "prometheus/jetwatch.rules.yml"
	rulesTestFile = "prometheus/jetwatch.rules.test.yml"
	runbookPrefix = "https://github.com/jetwatch/jetwatch/blob/main/README.md#"
)

type promRule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type promRuleFile struct {
	Groups []struct {
		Name  string     `yaml:"name"`
		Rules []promRule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) []promRule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var f promRuleFile
	require.NoError(t, yaml.Unmarshal(b, &f))
	var rules []promRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules)
	return rules
}

// binaryOrSkip finds a Prometheus binary; CI installs them (.ci/run).
func binaryOrSkip(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install prometheus brings it; CI installs it): %v", name, err)
	}
	return path
}

// TestPrometheusRulesPassPromtool checks the rules and runs their unit
// tests with Prometheus' own tool.
func TestPrometheusRulesPassPromtool(t *testing.T) {
	t.Parallel()
	promtool := binaryOrSkip(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(rulesFile)},
		{"test", "rules", filepath.Base(rulesTestFile)},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(rulesFile)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, string(out), "SUCCESS", "promtool %s", strings.Join(args, " "))
	}
}

// TestPrometheusRulesAreWhatAnSREExpects checks each alert's labels and
// annotations, that its runbook is a README section, that README's
// Prometheus rules section explains it, and that the promtool tests have a
// case where it fires and one where it does not.
func TestPrometheusRulesAreWhatAnSREExpects(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	anchors := readmeAnchors(string(readme))
	_, section, ok := strings.Cut(string(readme), "\n### Prometheus rules\n")
	require.True(t, ok, "README has a Prometheus rules section")
	section, _, _ = strings.Cut(section, "\n## ")

	b, err := os.ReadFile(rulesTestFile)
	require.NoError(t, err)
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &tests))
	require.Equal(t, []string{filepath.Base(rulesFile)}, tests.RuleFiles)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}

	alerts := 0
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			require.Regexp(t, `^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`, r.Record, "recording rules are named level:metric:operations")
			continue
		}
		alerts++
		require.NotEmpty(t, r.For, "%s: a for: duration, so one bad sample does not page", r.Alert)
		require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "%s: severity", r.Alert)
		for _, a := range []string{"summary", "description", "runbook_url"} {
			require.NotEmpty(t, r.Annotations[a], "%s: annotation %s", r.Alert, a)
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
		require.True(t, ok, "%s: runbook_url points into README (%s)", r.Alert, runbookPrefix)
		require.True(t, anchors[anchor], "%s: runbook_url's #%s is no README heading", r.Alert, anchor)
		// An alert says which stream, consumer, breaker or jetwatch: the
		// labels its expression keeps, and an alert that aggregates nothing
		// keeps jetwatch's instance.
		for _, label := range []string{"stream_name", "consumer_name", "stream", "consumer", "service", "breaker", "instance"} {
			if regexp.MustCompile(`\b`+label+`\b`).MatchString(r.Expr) || (label == "instance" && !strings.Contains(r.Expr, "by (")) {
				require.Contains(t, r.Annotations["summary"]+r.Annotations["description"], "{{ $labels."+label+" }}", "%s: its annotations name the %s", r.Alert, label)
			}
		}
		require.Contains(t, section, "`"+r.Alert+"`", "README's Prometheus rules section explains %s", r.Alert)
		require.True(t, fires[r.Alert], "%s: no promtool test where it fires", r.Alert)
		require.True(t, quiet[r.Alert], "%s: no promtool test where it stays quiet", r.Alert)
	}
	require.GreaterOrEqual(t, alerts, 8)
}

// readmeAnchors are the anchors GitHub gives README's headings.
func readmeAnchors(readme string) map[string]bool {
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(readme, "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimSpace(strings.TrimLeft(h, "#"))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
		}
	}
	return anchors
}

// promqlKeywords are the words of PromQL that are neither functions nor
// metric names; the ones that take a label list are true.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": false, "or": false, "unless": false, "bool": false, "offset": false, "inf": false, "nan": false, "atan2": false,
}

// aggregationModifier follows an aggregation's name when it comes first.
var aggregationModifier = regexp.MustCompile(`^(?i:by|without)\s*\(`)

// errBareSelector is a selector with no metric name before its braces.
var errBareSelector = errors.New("a selector without a metric name")

// promqlMetricNames returns the metric names a PromQL expression selects,
// sorted, each once. The Prometheus parser is not in jetwatch's module
// graph, so this is a tokenizer: it skips strings, comments, label
// matchers ({...}), ranges ([...]), numbers, the label lists of by,
// without, on, ignoring and group_left/right, keywords, and identifiers
// followed by "(" (functions and aggregations). A selector without a name
// ({__name__=~"..."}) could select anything, so it is an error.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	lastName := false // the previous token was a metric name
	i := 0
	skipSpace := func() {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
	}
	// skipTo moves past the closing byte, stepping over quoted strings.
	skipTo := func(closing byte) error {
		for i++; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == closing:
				i++
				return nil
			case c == '"' || c == '\'' || c == '`':
				j := i + 1
				for ; j < len(expr) && expr[j] != c; j++ {
					if expr[j] == '\\' && c != '`' {
						j++
					}
				}
				i = j
			}
		}
		return fmt.Errorf("no closing %q in %s", closing, expr)
	}
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	for skipSpace(); i < len(expr); skipSpace() {
		c := expr[i]
		switch {
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			if err := skipTo(c); err != nil {
				return nil, err
			}
			lastName = false
		case c == '{':
			if !lastName {
				return nil, fmt.Errorf("%w in %s: name the metric", errBareSelector, expr)
			}
			if err := skipTo('}'); err != nil {
				return nil, err
			}
			lastName = false
		case c == '[':
			if err := skipTo(']'); err != nil {
				return nil, err
			}
			lastName = false
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9'):
			// Numbers and durations: 1, 0.95, 1e3, 0x1f, 5m.
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.' ||
				((expr[i] == '+' || expr[i] == '-') && (expr[i-1] == 'e' || expr[i-1] == 'E'))) {
				i++
			}
			lastName = false
		case isIdent(c, true):
			start := i
			for i < len(expr) && isIdent(expr[i], false) {
				i++
			}
			word := expr[start:i]
			skipSpace()
			takesList, keyword := promqlKeywords[strings.ToLower(word)]
			switch {
			case keyword && takesList && i < len(expr) && expr[i] == '(':
				if err := skipTo(')'); err != nil {
					return nil, err
				}
				lastName = false
			case keyword || (i < len(expr) && expr[i] == '(') || aggregationModifier.MatchString(expr[i:]):
				lastName = false // a keyword, a function, or an aggregation (sum by (le) (...))
			default:
				names = append(names, word)
				lastName = true
			}
		default:
			i++
			lastName = false
		}
	}
	sort.Strings(names)
	return slices.Compact(names), nil
}

func TestPromQLMetricNames(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string][]string{
		`sum by (stream, consumer) (rate(jetwatch_dead_letters_captured_total{stream=~"a|b}", x='{'}[5m])) > 0`: {"jetwatch_dead_letters_captured_total"},
		`up == 0 and on (job, instance) present_over_time(jetwatch_build_info[1d])`:                             {"jetwatch_build_info", "up"},
		"a:b:rate5m * ON(x) GROUP_LEFT (y) c offset 5m unless d > BOOL 1e3 # e f\n or sum(g) without (h, i)":    {"a:b:rate5m", "c", "d", "g"},
		`count_values("not_a_metric", m) * Inf - NaN + 0x1f * -.5`:                                              {"m"},
		`histogram_quantile(0.95, sum by (le) (rate(x_bucket[$__rate_interval])))`:                              {"x_bucket"},
		`label_replace(v, "dst", "$1", "src", "(.*)") and w @ start()`:                                          {"v", "w"},
		`topk(5, max by (stream_name, consumer_name) (jetstream_consumer_num_pending{stream_name=~"$stream"}))`: {"jetstream_consumer_num_pending"},
		`max without (server_name) (jetwatch_consumer_lag_state) == 2 or Sum By(x)(y)`:                          {"jetwatch_consumer_lag_state", "y"},
		`time() - vector(0)`: nil,
	} {
		got, err := promqlMetricNames(expr)
		require.NoError(t, err, expr)
		require.Equal(t, want, got, expr)
	}
	_, err := promqlMetricNames(`{__name__=~"jetwatch_.+"}`)
	require.ErrorIs(t, err, errBareSelector)
	_, err = promqlMetricNames(`rate(x[5m)`)
	require.Error(t, err, "an unclosed range")
}

// TestPrometheusAgainstTheDemo runs `jetwatch demo` and checks that every
// metric a rule reads is one the demo exposes; then a real Prometheus
// scrapes it every second with the rules loaded: every rule evaluates; the demo's stalled
// consumer, full stream and dead letters raise their alerts; every Grafana
// panel query parses and the core panels have data.
func TestPrometheusAgainstTheDemo(t *testing.T) {
	t.Parallel()
	demo := startDemoBinary(t, jetwatchBinary(t))
	rules := loadRules(t)

	t.Run("rules read only metrics jetwatch exposes", func(t *testing.T) {
		recorded := map[string]bool{}
		for _, r := range rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
		used := map[string][]string{} // metric -> rules
		for _, r := range rules {
			names, err := promqlMetricNames(r.Expr)
			require.NoError(t, err, "%s%s", r.Alert, r.Record)
			require.NotEmpty(t, names, "%s%s reads no metric", r.Alert, r.Record)
			for _, n := range names {
				used[n] = append(used[n], r.Alert+r.Record)
			}
		}
		// Labelled series appear with their first dead letter or breaker.
		var missing []string
		natstest.CheckFor(t, 60*time.Second, 500*time.Millisecond, func() error {
			exposed := exposedMetrics(t, demo)
			missing = missing[:0]
			for n, by := range used {
				switch {
				case strings.Contains(n, ":"):
					require.True(t, recorded[n], "%s read by %v is recorded by no rule", n, by)
				case n == "up": // Prometheus' own, for every target
				case !exposed[n]:
					missing = append(missing, fmt.Sprintf("%s (read by %v)", n, by))
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("the demo's /metrics does not have %v", missing)
			}
			return nil
		})
		require.Contains(t, used, "jetwatch_consumer_stalled", "the tokenizer found the rules' metrics")
	})

	// The rest needs Prometheus; the metric names above are checked
	// without it.
	prom := startPrometheus(t, binaryOrSkip(t, "prometheus"), strings.TrimPrefix(demo, "http://"))

	t.Run("every rule evaluates", func(t *testing.T) {
		natstest.CheckFor(t, 30*time.Second, 500*time.Millisecond, func() error {
			var resp struct {
				Groups []struct {
					Rules []struct {
						Name           string `json:"name"`
						Health         string `json:"health"`
						LastError      string `json:"lastError"`
						LastEvaluation string `json:"lastEvaluation"`
					} `json:"rules"`
				} `json:"groups"`
			}
			if err := prom.api("/api/v1/rules", nil, &resp); err != nil {
				return err
			}
			n := 0
			for _, g := range resp.Groups {
				for _, r := range g.Rules {
					n++
					if r.Health != "ok" {
						return fmt.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
					}
				}
			}
			if n != len(rules) {
				return fmt.Errorf("prometheus loaded %d rules, the file has %d", n, len(rules))
			}
			return nil
		})
	})

	t.Run("the demo's trouble raises alerts", func(t *testing.T) {
		want := map[string]string{ // alert -> a label value it names
			"JetStreamConsumerStalled":     "archiver",
			"JetStreamStreamNearLimit":     "SENSORS",
			"JetStreamDeadLettersArriving": "",
		}
		natstest.CheckFor(t, 60*time.Second, 500*time.Millisecond, func() error {
			var resp struct {
				Alerts []promAlert `json:"alerts"`
			}
			if err := prom.api("/api/v1/alerts", nil, &resp); err != nil {
				return err
			}
			for name, label := range want {
				found := slices.ContainsFunc(resp.Alerts, func(a promAlert) bool {
					named := label == ""
					for _, v := range a.Labels {
						named = named || v == label
					}
					return a.Labels["alertname"] == name && named && (a.State == "pending" || a.State == "firing")
				})
				if !found {
					return fmt.Errorf("no %s alert naming %q yet among %+v", name, label, resp.Alerts)
				}
			}
			return nil
		})
	})

	t.Run("every Grafana query parses and the core panels have data", func(t *testing.T) {
		d, panels := loadDashboard(t)
		// Grafana's variables as Grafana would fill them: $stream is
		// multi-value with All, a regex.
		vars := strings.NewReplacer("$__rate_interval", "10s", "$__interval", "2s", "$__range", "1m",
			"$stream", ".*", "$topn", "5")
		core := []string{"Consumer lag", "Stalled consumers", "Stream limit used", "Ack pending",
			"Dead letters captured", "Dead letters pending", "Dead-letter index lag",
			"NATS connected", "Last sample age", "Sample duration", "Breaker states"}
		seen := map[string]bool{}
		for _, p := range panels {
			for _, target := range p.Targets {
				q := vars.Replace(target.Expr)
				require.NotContains(t, q, "$", "panel %q: a Grafana variable this test does not fill", p.Title)
				isCore := false
				for _, c := range core {
					if strings.HasPrefix(p.Title, c) {
						isCore, seen[c] = true, true
					}
				}
				// A parse error is a 400 from the API, and no waiting mends it.
				var res queryResult
				require.NoError(t, prom.api("/api/v1/query", url.Values{"query": {q}}, &res), "panel %q: %s", p.Title, q)
				if !isCore {
					continue
				}
				natstest.CheckFor(t, 30*time.Second, 500*time.Millisecond, func() error {
					if err := prom.api("/api/v1/query", url.Values{"query": {q}}, &res); err != nil {
						return err
					}
					if len(res.Result) == 0 {
						return fmt.Errorf("panel %q: %s has no data", p.Title, q)
					}
					return nil
				})
			}
		}
		require.Len(t, seen, len(core), "every core panel is in the dashboard")
		// The $stream variable's query, as Grafana's label_values asks it.
		for _, v := range d.Templating.List {
			var q struct {
				Query string `json:"query"`
			}
			if v.Type != "query" || json.Unmarshal(v.Query, &q) != nil {
				continue
			}
			m := regexp.MustCompile(`^label_values\((\w+), (\w+)\)$`).FindStringSubmatch(q.Query)
			require.NotNil(t, m, "variable %s: %s", v.Name, q.Query)
			var values []string
			require.NoError(t, prom.api("/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {m[1]}}, &values))
			require.Contains(t, values, "ORDERS", "variable %s lists the demo's streams", v.Name)
		}
	})
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

type queryResult struct {
	ResultType string            `json:"resultType"`
	Result     []json.RawMessage `json:"result"`
}

// exposedMetrics are the metric names of a /metrics answer, with a
// histogram's series names.
func exposedMetrics(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	names := map[string]bool{}
	typeLine := regexp.MustCompile(`^# TYPE (\S+) (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := typeLine.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
			if m[2] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[m[1]+s] = true
				}
			}
		}
	}
	require.NoError(t, sc.Err())
	require.Contains(t, names, "jetwatch_build_info")
	return names
}

// startDemoBinary runs `jetwatch demo` on free ports, sampling every
// second, and returns its dashboard's base URL once /readyz answers 200.
// Ctrl-C stops it at the end of the test.
func startDemoBinary(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "demo", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-port", "0",
		"--sample-interval", "1s", "--stall-after", "3s", "--log-level", "warn")
	cmd.Env = []string{}
	out := startProcess(t, cmd, syscall.SIGINT)
	var base string
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		if err := out.exited(); err != nil {
			return err
		}
		m := regexp.MustCompile(`dashboard: (http://\S+)/`).FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("no dashboard address printed yet:\n%s", out)
		}
		base = m[1]
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answers %d", resp.StatusCode)
		}
		return nil
	})
	return base
}

// promServer is a Prometheus the test started.
type promServer struct{ base string }

// api GETs a Prometheus API path and decodes its data into v; an answer
// other than status success is an error that says why.
func (p promServer) api(path string, query url.Values, v any) error {
	resp, err := http.Get(p.base + path + "?" + query.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %d, not JSON: %w", path, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s %s: %s: %s", path, query.Get("query"), body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, v)
}

// startPrometheus runs Prometheus with the rules, scraping target every
// second, on a free port with its storage in a temporary directory, and
// returns it once it has scraped target five times. SIGTERM stops it at
// the end of the test.
func startPrometheus(t *testing.T, bin, target string) promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: jetwatch
    static_configs:
      - targets: [%q]
`, rules, target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // Prometheus takes a port, not a listener
	cmd := exec.Command(bin, "--config.file", filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", addr, "--log.level", "warn")
	cmd.Env = []string{}
	out := startProcess(t, cmd, syscall.SIGTERM)
	p := promServer{base: "http://" + addr}
	natstest.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		if err := out.exited(); err != nil {
			return err
		}
		var res queryResult
		q := `count_over_time(up{job="jetwatch"}[1m]) >= 5 and up{job="jetwatch"} == 1`
		if err := p.api("/api/v1/query", url.Values{"query": {q}}, &res); err != nil {
			return err
		}
		if len(res.Result) == 0 {
			return fmt.Errorf("prometheus has not scraped %s five times yet", target)
		}
		return nil
	})
	return p
}

// processOutput is what a started process writes, safe to read while it
// runs.
type processOutput struct {
	mu   sync.Mutex
	buf  strings.Builder
	done chan struct{}
	err  error
}

func (o *processOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *processOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// exited is an error saying how the process ended, or nil while it runs.
func (o *processOutput) exited() error {
	select {
	case <-o.done:
		return fmt.Errorf("exited early (%v):\n%s", o.err, o.String())
	default:
		return nil
	}
}

// startProcess starts cmd and, at the end of the test, stops it with stop,
// or kills it after 30 s; a process that does not stop cleanly fails the
// test.
func startProcess(t *testing.T, cmd *exec.Cmd, stop os.Signal) *processOutput {
	t.Helper()
	out := &processOutput{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	go func() {
		out.err = cmd.Wait()
		close(out.done)
	}()
	t.Cleanup(func() {
		if out.exited() != nil {
			return
		}
		require.NoError(t, cmd.Process.Signal(stop))
		select {
		case <-out.done:
			require.NoError(t, out.err, "%s stopped with an error:\n%s", filepath.Base(cmd.Path), out)
		case <-time.After(30 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // failing anyway
			<-out.done
			t.Errorf("%s did not stop within 30 s of %v:\n%s", filepath.Base(cmd.Path), stop, out)
		}
	})
	return out
}
