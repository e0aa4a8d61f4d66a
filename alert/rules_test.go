package alert_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
)

// issueRules is the rules file the issue says must work as written.
const issueRules = `receivers:
  - name: ops
    url: http://127.0.0.1:9000/hook
    format: alertmanager        # alertmanager | json | slack
    secret: s3cret              # HMAC key; may also come from an env var
rules:
  - name: billing-lag
    kind: consumer_lag
    stream: ORDERS
    consumer: billing
    above: 10
    for: 5s
    receivers: [ops]
`

func TestRulesFileFromTheIssueLoads(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(file, []byte(issueRules), 0o600))
	rs, err := alert.LoadFile(file, nil)
	require.NoError(t, err)
	require.Len(t, rs.Rules, 1)
	r := rs.Rules[0]
	require.Equal(t, "billing-lag", r.Name)
	require.Equal(t, alert.KindConsumerLag, r.Kind)
	require.Equal(t, "ORDERS", r.Stream)
	require.Equal(t, "billing", r.Consumer)
	require.InDelta(t, 10, r.Above, 0)
	require.Equal(t, alert.Duration(5*time.Second), r.For)
	require.Equal(t, 7, r.Line)
	ops, ok := rs.Receiver("ops")
	require.True(t, ok)
	require.Equal(t, alert.FormatAlertmanager, ops.Format)
	require.Equal(t, "s3cret", ops.Secret)
}

func TestRulesFileErrorsNameLineAndField(t *testing.T) {
	t.Parallel()
	bad := `receivers:
  - name: ops
    url: ftp://example.com
    format: pager
    secret_env: NO_SUCH_VAR
rules:
  - name: lag
    kind: consumer_lagg
    receivers: [ops]
  - name: full
    kind: stream_limit
    above: 180
    receivers: [pager]
  - name: rate
    kind: dead_letter_rate
    subject: "orders..paid"
    receivers: [ops]
  - name: typo
    kind: consumer_lag
    abvoe: 3
    receivers: [ops]
`
	_, err := alert.Parse([]byte(bad), "rules.yaml", func(string) string { return "" })
	require.ErrorIs(t, err, alert.ErrInvalidRules)
	for _, want := range []string{
		`rules.yaml:3: receiver "ops": field url: must be an http:// or https:// URL`,
		`rules.yaml:4: receiver "ops": field format: "pager" is not alertmanager, alertmanager-api, json or slack`,
		`rules.yaml:5: receiver "ops": field secret_env: environment variable NO_SUCH_VAR is empty or not set`,
		`rules.yaml:8: rule "lag": field kind: "consumer_lagg" is not one of`,
		`rules.yaml:12: rule "full": field above: must be a percentage`,
		`rules.yaml:13: rule "full": field receivers: no receiver named "pager"`,
		`rules.yaml:14: rule "rate": field window: required`,
		`rules.yaml:16: rule "rate": field subject:`,
		`rules.yaml:20: rule 4: field abvoe: unknown`,
	} {
		require.Contains(t, err.Error(), want)
	}
}

func TestRulesSecretFromEnvironment(t *testing.T) {
	t.Parallel()
	src := `receivers:
  - {name: ops, url: "https://hooks.example.com/x?token=abc", format: slack, secret_env: OPS_HOOK_SECRET}
rules: []
`
	rs, err := alert.Parse([]byte(src), "rules.yaml", func(k string) string {
		if k == "OPS_HOOK_SECRET" {
			return "from-env"
		}
		return ""
	})
	require.NoError(t, err)
	ops, _ := rs.Receiver("ops")
	require.Equal(t, "from-env", ops.Secret)
	require.Equal(t, "https://hooks.example.com/…", ops.SafeURL(), "the shown URL drops what may hold a token: user, path, query")
}

// TestREADMEHoldsTheVerificationRecipe keeps the README's snippet the very
// function the tests verify real requests with.
func TestREADMEHoldsTheVerificationRecipe(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("verify_example_test.go")
	require.NoError(t, err)
	fn := string(src)[strings.Index(string(src), "func verifySignature"):]
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "```go\n"+fn+"```", "README's verification snippet differs from verifySignature in verify_example_test.go")
}

// TestKeepFiringForDefaultsByKind: breaker rules wait for the breaker to
// stay closed a minute unless told otherwise; 0s is a choice, not a gap.
func TestKeepFiringForDefaultsByKind(t *testing.T) {
	t.Parallel()
	src := `receivers: [{name: ops, url: "http://127.0.0.1:9/hook"}]
rules:
  - {name: a, kind: breaker_open, receivers: [ops]}
  - {name: b, kind: breaker_open, keep_firing_for: 0s, receivers: [ops]}
  - {name: c, kind: consumer_lag, above: 1, receivers: [ops]}
  - {name: d, kind: consumer_lag, above: 1, keep_firing_for: 5m, receivers: [ops]}
`
	rs, err := alert.Parse([]byte(src), "rules.yaml", nil)
	require.NoError(t, err)
	var got []time.Duration
	for _, r := range rs.Rules {
		got = append(got, r.KeepFiring())
	}
	require.Equal(t, []time.Duration{time.Minute, 0, 0, 5 * time.Minute}, got)

	_, err = alert.Parse([]byte(`receivers: [{name: ops, url: "http://127.0.0.1:9/hook"}]
rules:
  - name: a
    kind: breaker_open
    keep_firing_for: 48h
    receivers: [ops]
  - name: b
    kind: breaker_open
    keep_firing_for: -1m
    receivers: [ops]
`), "rules.yaml", nil)
	require.ErrorIs(t, err, alert.ErrInvalidRules)
	require.ErrorContains(t, err, `rules.yaml:5: rule "a": field keep_firing_for: at most 24h`)
	require.ErrorContains(t, err, `line 9: "-1m" is not a duration`)
}

func TestAlertmanagerAPIReceiverNeedsABaseURL(t *testing.T) {
	t.Parallel()
	const rule = "rules:\n  - {name: lag, kind: consumer_lag, receivers: [am]}\n"
	for _, tc := range []struct{ url, extra, want string }{
		{"http://am:9093/api/v2/alerts", "", `field url: give the Alertmanager's base URL, like http://alertmanager:9093 (jetwatch adds /api/v2/alerts)`},
		{"http://am:9093/?token=x", "", `field url: give the Alertmanager's base URL`},
		{"ftp://am:9093", "", `field url: must be an http:// or https:// URL`},
		{"http://am:9093", ", resend_every: nope", `"nope" is not a duration`},
	} {
		src := "receivers:\n  - {name: am, format: alertmanager-api, url: '" + tc.url + "'" + tc.extra + "}\n" + rule
		_, err := alert.Parse([]byte(src), "rules.yaml", nil)
		require.ErrorIs(t, err, alert.ErrInvalidRules, tc.url)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := alert.Parse([]byte("receivers:\n  - {name: am, url: http://h/hook, resend_every: 1m}\n"+rule), "rules.yaml", nil)
	require.ErrorContains(t, err, `receiver "am": field resend_every: only alertmanager-api receivers re-send`)

	rs, err := alert.Parse([]byte("receivers:\n  - {name: am, format: alertmanager-api, url: http://am:9093/prefix/}\n"+rule), "rules.yaml", nil)
	require.NoError(t, err)
	am, _ := rs.Receiver("am")
	require.Equal(t, alert.Duration(time.Minute), am.ResendEvery, "re-sent every minute unless told")
}
