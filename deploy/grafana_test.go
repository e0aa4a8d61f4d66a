package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// plannedMetrics are metrics the dashboard shows before the code registers
// them, in a row of their own labelled planned. None now.
var plannedMetrics = []string{}

var metricName = regexp.MustCompile(`\b(?:jetwatch|jetstream)_[a-z0-9_]+\b`)

// readmeMetrics are the metric names README's "Metrics and probes" lists.
func readmeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## Metrics and probes\n")
	require.True(t, ok, "README has a Metrics and probes section")
	section, _, _ = strings.Cut(section, "\n## ")
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:jetwatch|jetstream)_[a-z0-9_]+)[{`]").FindAllStringSubmatch(section, -1) {
		names[m[1]] = true
	}
	require.Greater(t, len(names), 20)
	return names
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

type grafanaDashboard struct {
	Title      string         `json:"title"`
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// queriedPanel is a panel with queries and the row it sits under.
type queriedPanel struct {
	grafanaPanel
	row string
}

func loadDashboard(t *testing.T) (grafanaDashboard, []queriedPanel) {
	t.Helper()
	b, err := os.ReadFile("grafana/jetwatch.json")
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(b, &d))
	require.NotEmpty(t, d.UID)
	var out []queriedPanel
	row := ""
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				row = p.Title
				walk(p.Panels)
				continue
			}
			out = append(out, queriedPanel{p, row})
		}
	}
	walk(d.Panels)
	require.NotEmpty(t, out)
	return d, out
}

func TestGrafanaUsesOnlyMetricsJetwatchExposes(t *testing.T) {
	t.Parallel()
	d, panels := loadDashboard(t)
	known := readmeMetrics(t)
	planned := map[string]bool{}
	for _, m := range plannedMetrics {
		planned[m] = true
	}
	used := map[string]bool{}
	// A histogram's series carry suffixes its documented name lacks.
	documented := func(name string) bool {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && (known[base] || planned[base]) {
				used[base] = true
				return true
			}
		}
		return false
	}
	for _, p := range panels {
		require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		for _, target := range p.Targets {
			names := metricName.FindAllString(target.Expr, -1)
			require.NotEmpty(t, names, "panel %q: %s uses no jetwatch metric", p.Title, target.Expr)
			for _, n := range names {
				require.True(t, documented(n), "panel %q uses %s, which README's Metrics and probes does not list", p.Title, n)
				if planned[n] {
					require.Contains(t, strings.ToLower(p.row), "planned", "panel %q uses the planned %s outside the planned row", p.Title, n)
				}
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			for _, n := range metricName.FindAllString(string(v.Query), -1) {
				require.True(t, documented(n), "variable %s uses %s, which README does not list", v.Name, n)
			}
		}
	}
	// What the dashboard is for.
	for _, m := range []string{
		"jetstream_consumer_num_pending", "jetwatch_consumer_stalled", "jetwatch_stream_limit_used_ratio",
		"jetwatch_dead_letters_captured_total", "jetwatch_dead_letters_pending", "jetwatch_redeliveries_total",
		"jetwatch_bridge_fetch_failures_total", "jetwatch_dead_letter_index_lag", "jetwatch_sample_duration_seconds",
		"jetwatch_nats_connected", "jetwatch_breaker_state", "jetwatch_alerts_firing",
	} {
		require.True(t, used[m], "no panel shows %s", m)
	}
}

func TestGrafanaImportsAnywhereAndLaysOut(t *testing.T) {
	t.Parallel()
	d, panels := loadDashboard(t)
	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		hasDatasourceVar = hasDatasourceVar || (v.Name == "datasource" && v.Type == "datasource")
	}
	require.True(t, hasDatasourceVar, "a datasource variable, so the import asks for no uid")
	ids := map[int]bool{}
	type rect struct{ x, y, w, h int }
	var placed []rect
	var all []grafanaPanel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	for _, p := range all {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		g := p.GridPos
		require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "panel %q: gridPos %+v outside the 24 columns", p.Title, g)
		r := rect{g.X, g.Y, g.W, g.H}
		for _, o := range placed {
			overlap := r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h
			require.False(t, overlap, "panel %q overlaps another at %+v", p.Title, g)
		}
		placed = append(placed, r)
	}
	for _, p := range panels {
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q uses the datasource variable", p.Title)
	}
}

// registeredMetric finds where jetwatch's code names a metric: client_golang
// options (Name: "..."), the sampler's exposition tables ({"name", "help"})
// and named gauge constants.
var registeredMetric = regexp.MustCompile(`(?:Name:\s*|\{|Gauge\s*=\s*)"((?:jetwatch|jetstream)_[a-z0-9_]+)"`)

func TestREADMEListsEveryMetricJetwatchRegisters(t *testing.T) {
	t.Parallel()
	known := readmeMetrics(t)
	found := 0
	err := filepath.WalkDir("..", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			switch e.Name() {
			// service: services register those on their own registry, they
			// never reach jetwatch's /metrics.
			case ".git", "service", "deploy", "jetwatch-data":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range registeredMetric.FindAllStringSubmatch(string(b), -1) {
			found++
			require.True(t, known[m[1]], "%s registers %s; list it in README's Metrics and probes", path, m[1])
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, found, 20, "the patterns still find the metrics")
}
