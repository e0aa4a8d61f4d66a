package alert

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/jetwatch/jetwatch/store"
)

// Rule kinds.
const (
	KindConsumerLag     = "consumer_lag"
	KindConsumerStalled = "consumer_stalled"
	KindDeadLetterRate  = "dead_letter_rate"
	KindDeadLetterMatch = "dead_letter_match"
	KindBreakerOpen     = "breaker_open"
	KindStreamLimit     = "stream_limit"
	KindAdvisory        = "advisory"
	KindSagaStuck       = "saga_stuck"
)

// Advisory events an advisory rule can watch.
const (
	EventQuorumLost    = "quorum_lost"
	EventLeaderElected = "leader_elected"
	EventOutOfStorage  = "out_of_storage"
	EventDataLoss      = "data_loss"
)

// Receiver formats.
const (
	FormatAlertmanager = "alertmanager"
	// FormatAlertmanagerAPI posts to an Alertmanager's /api/v2/alerts, as
	// Prometheus does: url is the Alertmanager's base URL.
	FormatAlertmanagerAPI = "alertmanager-api"
	FormatJSON            = "json"
	FormatSlack           = "slack"
)

// Duration is a time.Duration written as "5s", "10m" or "1h30m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (like 30s, 5m, 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Receiver is where notifications go.
type Receiver struct {
	Name   string `yaml:"name" json:"name"`
	URL    string `yaml:"url" json:"-"`
	Format string `yaml:"format" json:"format"`
	// Secret is the HMAC key for X-Jetwatch-Signature. Never shown or logged.
	Secret string `yaml:"secret" json:"-"`
	// SecretEnv names an environment variable holding the secret.
	SecretEnv string `yaml:"secret_env" json:"secret_env,omitempty"`
	// Timeout of one request. Defaults to 10 seconds.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// ResendEvery re-sends a firing alert to an alertmanager-api receiver
	// this often, so Alertmanager never resolves it by its resolve_timeout.
	// Defaults to 1 minute; other formats have none.
	ResendEvery Duration `yaml:"resend_every" json:"resend_every,omitempty"`
}

// defaultResendEvery is Prometheus's own default evaluation interval, well
// inside Alertmanager's default resolve_timeout of 5 minutes.
const defaultResendEvery = time.Minute

// alertsPath is where Alertmanager takes alerts, below its base URL.
const alertsPath = "api/v2/alerts"

// endpoint is the address requests go to: the URL itself, or for an
// alertmanager-api receiver its /api/v2/alerts below the base URL, which
// may end in a slash or carry a path prefix (--web.route-prefix).
func (r Receiver) endpoint() (string, error) {
	if r.Format != FormatAlertmanagerAPI {
		return r.URL, nil
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return "", fmt.Errorf("receiver url: %w", err)
	}
	return u.JoinPath(alertsPath).String(), nil
}

// SafeURL is the receiver's address fit to show: scheme and host only.
// User info, query and path may all hold a token (a Slack webhook's path
// is its secret), so the path shows as an ellipsis.
func (r Receiver) SafeURL() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return "(invalid URL)"
	}
	safe := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		safe += "/…"
	}
	return safe
}

// Signed says whether requests to the receiver carry a signature.
func (r Receiver) Signed() bool { return r.Secret != "" }

// Rule is one alert rule as written in the rules file.
type Rule struct {
	Name string `yaml:"name" json:"name"`
	Kind string `yaml:"kind" json:"kind"`
	// Stream and Consumer select what the rule watches; * and ? match
	// like shell patterns. Empty matches everything.
	Stream   string `yaml:"stream" json:"stream,omitempty"`
	Consumer string `yaml:"consumer" json:"consumer,omitempty"`
	// Account selects accounts by pattern for consumer_lag,
	// consumer_stalled and stream_limit rules: with it, the rule also
	// watches the other accounts jetwatch samples (--all-accounts), and
	// each instance is labelled with its account. For dead_letter_rate
	// and dead_letter_match rules it selects among jetwatch's own account
	// and the --account names whose dead letters jetwatch captures. Empty
	// watches jetwatch's own account only, without the label.
	Account string `yaml:"account" json:"account,omitempty"`
	// Subject filters dead letters, with NATS wildcards.
	Subject string `yaml:"subject" json:"subject,omitempty"`
	// Reason filters dead letters: max_deliver, terminated or error.
	Reason string `yaml:"reason" json:"reason,omitempty"`
	// Search filters dead letters by words in their subject, error or
	// payload, as the dead-letter page's search does.
	Search string `yaml:"search" json:"search,omitempty"`
	// Service and Breaker select breakers, as patterns.
	Service string `yaml:"service" json:"service,omitempty"`
	Breaker string `yaml:"breaker" json:"breaker,omitempty"`
	// Event is the advisory to watch.
	Event string `yaml:"event" json:"event,omitempty"`
	// Start, End, Within and Key define a saga_stuck rule: a journey
	// keyed by the correlation Key (a name from --correlate-by) that saw
	// the Start subject and none of the End subjects within Within.
	Start  string   `yaml:"start" json:"start,omitempty"`
	End    []string `yaml:"end" json:"end,omitempty"`
	Within Duration `yaml:"within" json:"within,omitempty"`
	Key    string   `yaml:"key" json:"key,omitempty"`
	// Above is the threshold: pending messages, a percentage, a count.
	Above float64 `yaml:"above" json:"above"`
	// States are the lag states a consumer_lag rule fires for
	// (falling_behind, stalled, stopped, draining); empty: by Above only.
	States []string `yaml:"states" json:"states,omitempty"`
	// For is how long the condition must hold before the rule fires.
	For Duration `yaml:"for" json:"for"`
	// Window is the period counted by rate rules; for saga_stuck, how
	// far back starts are looked for (defaults to 24 hours).
	Window Duration `yaml:"window" json:"window,omitempty"`
	// KeepFiringFor keeps an instance firing this long after its
	// condition cleared, so a condition that clears and comes back is one
	// episode, paged once. Defaults to 1 minute for breaker_open (the
	// breaker must stay closed that long), 0 otherwise.
	KeepFiringFor *Duration `yaml:"keep_firing_for" json:"keep_firing_for,omitempty"`
	// Repeat re-sends a firing notification this often; 0 never.
	Repeat    Duration `yaml:"repeat" json:"repeat,omitempty"`
	Severity  string   `yaml:"severity" json:"severity,omitempty"`
	Summary   string   `yaml:"summary" json:"summary,omitempty"`
	Receivers []string `yaml:"receivers" json:"receivers"`
	// Line is where the rule starts in the file.
	Line int `yaml:"-" json:"line"`
}

// Rules is a loaded, valid rules file.
type Rules struct {
	Receivers []Receiver `json:"receivers"`
	Rules     []Rule     `json:"rules"`
	// Source is the file the rules came from.
	Source string `json:"source"`
}

// Receiver returns the named receiver.
func (rs *Rules) Receiver(name string) (Receiver, bool) {
	if rs == nil {
		return Receiver{}, false
	}
	for _, r := range rs.Receivers {
		if r.Name == name {
			return r, true
		}
	}
	return Receiver{}, false
}

// maxKeepFiringFor bounds keep_firing_for: longer would hide that an
// outage ended for a day.
const maxKeepFiringFor = 24 * time.Hour

// ErrInvalidRules wraps every problem found in a rules file.
var ErrInvalidRules = errors.New("invalid rules file")

// LoadFile reads and validates a rules file. env looks up secret_env
// variables (os.Getenv when nil).
func LoadFile(file string, env func(string) string) (*Rules, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	rs, err := Parse(b, file, env)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

var receiverName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Parse validates rules from YAML. Every problem is reported with its
// file, line and field, all at once, so one edit fixes them all.
func Parse(b []byte, source string, env func(string) string) (*Rules, error) {
	if env == nil {
		env = os.Getenv
	}
	var problems []string
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", source, line, fmt.Sprintf(format, args...)))
	}
	var doc struct {
		Receivers []yaml.Node `yaml:"receivers"`
		Rules     []yaml.Node `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidRules, source, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	rs := &Rules{Source: source}
	names := map[string]bool{}
	for i := range doc.Receivers {
		n := &doc.Receivers[i]
		var r Receiver
		if err := decodeStrict(n, &r); err != nil {
			bad(errLine(n, err), "receiver %d: %s", i+1, err)
			continue
		}
		switch {
		case !receiverName.MatchString(r.Name):
			bad(fieldLine(n, "name"), "receiver %d: field name: %q must be 1-64 letters, digits, - or _", i+1, r.Name)
		case names[r.Name]:
			bad(fieldLine(n, "name"), "receiver %q: field name: defined twice", r.Name)
		}
		names[r.Name] = true
		r.Format = cmp.Or(r.Format, FormatAlertmanager)
		u, err := url.Parse(r.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad(fieldLine(n, "url"), "receiver %q: field url: must be an http:// or https:// URL", r.Name)
		case r.Format == FormatAlertmanagerAPI && (u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/"+alertsPath)):
			bad(fieldLine(n, "url"), "receiver %q: field url: give the Alertmanager's base URL, like http://alertmanager:9093 (jetwatch adds /%s)", r.Name, alertsPath)
		}
		switch r.Format {
		case FormatAlertmanager, FormatAlertmanagerAPI, FormatJSON, FormatSlack:
		default:
			bad(fieldLine(n, "format"), "receiver %q: field format: %q is not alertmanager, alertmanager-api, json or slack", r.Name, r.Format)
		}
		switch {
		case r.Format != FormatAlertmanagerAPI && r.ResendEvery != 0:
			bad(fieldLine(n, "resend_every"), "receiver %q: field resend_every: only alertmanager-api receivers re-send (use a rule's repeat for reminders)", r.Name)
		case r.Format == FormatAlertmanagerAPI && r.ResendEvery == 0:
			r.ResendEvery = Duration(defaultResendEvery)
		}
		if r.SecretEnv != "" {
			if r.Secret != "" {
				bad(fieldLine(n, "secret_env"), "receiver %q: field secret_env: give secret or secret_env, not both", r.Name)
			}
			r.Secret = env(r.SecretEnv)
			if r.Secret == "" {
				bad(fieldLine(n, "secret_env"), "receiver %q: field secret_env: environment variable %s is empty or not set", r.Name, r.SecretEnv)
			}
		}
		if r.Timeout == 0 {
			r.Timeout = Duration(10 * time.Second)
		}
		if time.Duration(r.Timeout) > maxReceiverTimeout {
			bad(fieldLine(n, "timeout"), "receiver %q: field timeout: at most %s", r.Name, maxReceiverTimeout)
		}
		rs.Receivers = append(rs.Receivers, r)
	}
	ruleNames := map[string]bool{}
	for i := range doc.Rules {
		n := &doc.Rules[i]
		var r Rule
		if err := decodeStrict(n, &r); err != nil {
			bad(errLine(n, err), "rule %d: %s", i+1, err)
			continue
		}
		r.Line = n.Line
		label := fmt.Sprintf("rule %q", r.Name)
		if r.Name == "" {
			label = fmt.Sprintf("rule %d", i+1)
			bad(n.Line, "%s: field name: required", label)
		} else if ruleNames[r.Name] {
			bad(fieldLine(n, "name"), "%s: field name: defined twice", label)
		}
		ruleNames[r.Name] = true
		field := func(f, format string, args ...any) {
			bad(fieldLine(n, f), "%s: field %s: %s", label, f, fmt.Sprintf(format, args...))
		}
		for _, f := range []struct{ name, v string }{{"stream", r.Stream}, {"consumer", r.Consumer}, {"service", r.Service}, {"breaker", r.Breaker}, {"account", r.Account}} {
			if _, err := path.Match(f.v, ""); err != nil {
				field(f.name, "%q is not a valid pattern (use * and ?)", f.v)
			}
		}
		validateKind(r, field)
		if r.KeepFiringFor != nil && time.Duration(*r.KeepFiringFor) > maxKeepFiringFor {
			field("keep_firing_for", "at most 24h: longer would hide for a day that the condition cleared")
		}
		switch r.Severity {
		case "":
			r.Severity = "warning"
		case "info", "warning", "critical":
		default:
			field("severity", "%q is not info, warning or critical", r.Severity)
		}
		if len(r.Receivers) == 0 {
			field("receivers", "name at least one receiver")
		}
		for _, rc := range r.Receivers {
			if !names[rc] {
				field("receivers", "no receiver named %q (define it under receivers:)", rc)
			}
		}
		rs.Rules = append(rs.Rules, r)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  %s", ErrInvalidRules, strings.Join(problems, "\n  "))
	}
	return rs, nil
}

// validateKind checks the fields each kind needs.
func validateKind(r Rule, field func(f, format string, args ...any)) {
	switch r.Kind {
	case KindConsumerLag:
		if r.Above < 0 {
			field("above", "must be 0 or more pending messages")
		}
		for _, st := range r.States {
			if st == store.LagOK || !slices.Contains(store.LagStates, st) {
				field("states", "%q is not a lag state: use falling_behind, stalled, stopped, draining or paused", st)
			}
		}
	case KindConsumerStalled:
		if r.For <= 0 {
			field("for", "required: how long without delivery or ack counts as stalled (like 5m)")
		}
	case KindDeadLetterRate:
		if r.Window <= 0 {
			field("window", "required: the period to count dead letters in (like 5m)")
		}
		if r.Above < 0 {
			field("above", "must be 0 or more dead letters")
		}
	case KindDeadLetterMatch:
	case KindBreakerOpen:
	case KindStreamLimit:
		if r.Above <= 0 || r.Above > 100 {
			field("above", "must be a percentage above 0 and at most 100")
		}
	case KindAdvisory:
		switch r.Event {
		case EventQuorumLost, EventOutOfStorage, EventDataLoss:
		case EventLeaderElected:
			if r.Window <= 0 {
				field("window", "required for leader_elected: the period to count elections in (like 10m)")
			}
		default:
			field("event", "%q is not quorum_lost, leader_elected, out_of_storage or data_loss", r.Event)
		}
	case KindSagaStuck:
		validateSaga(r, field)
	case "":
		field("kind", "required: one of consumer_lag, consumer_stalled, dead_letter_rate, dead_letter_match, breaker_open, stream_limit, advisory, saga_stuck")
	default:
		field("kind", "%q is not one of consumer_lag, consumer_stalled, dead_letter_rate, dead_letter_match, breaker_open, stream_limit, advisory, saga_stuck", r.Kind)
	}
	if r.Kind != KindSagaStuck && (r.Start != "" || len(r.End) > 0 || r.Within != 0 || r.Key != "") {
		field("start", "start, end, within and key belong to saga_stuck rules")
	}
	if len(r.States) > 0 && r.Kind != KindConsumerLag {
		field("states", "only consumer_lag rules have states")
	}
	if r.Account != "" && r.Kind != KindConsumerLag && r.Kind != KindConsumerStalled && r.Kind != KindStreamLimit &&
		r.Kind != KindDeadLetterRate && r.Kind != KindDeadLetterMatch {
		field("account", "only consumer_lag, consumer_stalled, stream_limit, dead_letter_rate and dead_letter_match rules watch other accounts")
	}
	if r.Subject != "" || r.Reason != "" {
		var fe *store.FilterError
		if err := (store.DeadLetterFilter{Subject: r.Subject, Reason: r.Reason}).Validate(); errors.As(err, &fe) {
			field(fe.Field, "%s", fe.Problem)
		}
	}
}

// maxSagaEnds bounds the end subjects of a saga_stuck rule.
const maxSagaEnds = 20

// validateSaga checks a saga_stuck rule: journey subjects are literal
// (the index looks them up exactly), and the rule needs a time and a key.
func validateSaga(r Rule, field func(f, format string, args ...any)) {
	literal := func(s string) bool {
		return s != "" && len(s) <= 255 && !strings.ContainsAny(s, "*> \t\r\n") && !strings.HasPrefix(s, ".") &&
			!strings.HasSuffix(s, ".") && !strings.Contains(s, "..")
	}
	if !literal(r.Start) {
		field("start", "required: the subject that starts a journey, written out (like orders.created; no wildcards)")
	}
	switch {
	case len(r.End) == 0:
		field("end", "required: the subjects that end a journey (like [orders.shipped, orders.cancelled])")
	case len(r.End) > maxSagaEnds:
		field("end", "at most %d subjects", maxSagaEnds)
	}
	for _, e := range r.End {
		if !literal(e) {
			field("end", "%q is not a subject written out (no wildcards)", e)
		} else if e == r.Start {
			field("end", "%q is also the start subject", e)
		}
	}
	if r.Within <= 0 {
		field("within", "required: how long a journey may take to end (like 10m)")
	}
	if r.Key == "" || len(r.Key) > 64 {
		field("key", "required: the correlation name journeys are keyed by, as --correlate-by names it (like order)")
	}
	if r.Window != 0 && r.Window < r.Within {
		field("window", "how far back starts are looked for must be at least within")
	}
}

// decodeStrict decodes a mapping node, rejecting unknown fields.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("must be a mapping of field: value")
	}
	known := yamlFields(v)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !known[k.Value] {
			return &unknownField{name: k.Value, line: k.Line}
		}
	}
	if err := n.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// unknownField is a key the file format does not have: often a typo.
type unknownField struct {
	name string
	line int
}

func (u *unknownField) Error() string {
	return fmt.Sprintf("field %s: unknown (check the spelling; the README lists every field)", u.name)
}

// errLine is the line an error from decodeStrict points at.
func errLine(n *yaml.Node, err error) int {
	var u *unknownField
	if errors.As(err, &u) {
		return u.line
	}
	return n.Line
}

// fieldLine is the line of key in a mapping node, or the node's own line.
func fieldLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// yamlFields are the yaml keys of struct v points to.
func yamlFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	known := map[string]bool{}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			known[name] = true
		}
	}
	return known
}
