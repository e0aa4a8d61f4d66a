package alert_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/store"
)

// Rules with an account pattern watch the other accounts the sampler reads
// (--all-accounts) and label each instance with its account; rules
// without one watch jetwatch's own account, unlabelled, as before.
func TestRulesWithAnAccountWatchEveryAccount(t *testing.T) {
	t.Parallel()
	b := setup(t, `rules:
  - {name: everywhere, kind: consumer_stalled, account: '*', for: 1s, receivers: [ops]}
  - {name: teams, kind: consumer_stalled, account: 'T*', for: 1s, receivers: [ops]}
  - {name: here, kind: consumer_stalled, for: 1s, receivers: [ops]}
  - {name: full, kind: stream_limit, account: '*', above: 50, receivers: [ops]}
`)
	b.orders(t, 5)
	b.clock.CatchUp()
	b.clock.Advance(2 * time.Second)
	old := b.clock.Now().Add(-time.Hour)
	pct := 80.0
	// What the sampler read of the other accounts this cycle.
	others := []store.Account{{Name: "TEAM", ID: "ACTEAM",
		Streams:   []store.Stream{{Name: "ORDERS", Limits: store.StreamLimits{MsgsUsedPct: &pct}}},
		Consumers: []store.Consumer{{Stream: "ORDERS", Name: "billing", NumPending: 7, Created: old}},
	}, {Name: "GONE", ID: "ACGONE", Unread: &store.Unread{Why: "no response"},
		Consumers: []store.Consumer{{Stream: "X", Name: "y", NumPending: 1, Created: old}},
	}}
	e, err := alert.NewEvaluator(b.js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return b.rules },
		Index: b.db, DeadLetters: query.New(b.db, nil, ""), Now: b.clock.Now, Registerer: prometheus.NewRegistry(),
		Accounts: func() (string, []store.Account) { return "APP", others }})
	require.NoError(t, err)
	b.evaluate(t, e)

	instances := func(rule string) []map[string]string {
		statuses, _ := e.Statuses()
		var out []map[string]string
		for _, s := range statuses {
			if s.Rule.Name == rule {
				for _, in := range s.Instances {
					out = append(out, in.Labels)
				}
			}
		}
		slices.SortFunc(out, func(a, b map[string]string) int { return len(a["account"]) - len(b["account"]) })
		return out
	}
	require.Equal(t, []map[string]string{
		{"account": "APP", "stream": "ORDERS", "consumer": "billing"},
		{"account": "TEAM", "stream": "ORDERS", "consumer": "billing"},
	}, instances("everywhere"), "the same names in two accounts are two instances; an unread account has none")
	require.Equal(t, []map[string]string{{"account": "TEAM", "stream": "ORDERS", "consumer": "billing"}}, instances("teams"))
	require.Equal(t, []map[string]string{{"stream": "ORDERS", "consumer": "billing"}}, instances("here"), "no account: jetwatch's own, unlabelled")
	require.Equal(t, []map[string]string{{"account": "TEAM", "stream": "ORDERS", "limit": "messages"}}, instances("full"))
	statuses, _ := e.Statuses()
	for _, s := range statuses {
		if s.Rule.Name == "teams" {
			require.Contains(t, s.Instances[0].Summary, "in account TEAM")
		}
	}
}

func TestAnAccountOnlyForKindsThatHaveOne(t *testing.T) {
	t.Parallel()
	_, err := alert.Parse([]byte(`receivers: [{name: ops, url: "http://127.0.0.1:1/hook"}]
rules:
  - {name: b, kind: breaker_open, account: TEAM, receivers: [ops]}
  - {name: c, kind: consumer_lag, account: '[', receivers: [ops]}
`), "rules.yaml", nil)
	require.ErrorIs(t, err, alert.ErrInvalidRules)
	require.Contains(t, err.Error(), `rule "b": field account: only consumer_lag, consumer_stalled and stream_limit rules watch other accounts`)
	require.Contains(t, err.Error(), `rule "c": field account: "[" is not a valid pattern`)
}
