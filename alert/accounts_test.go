package alert_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
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
	require.Contains(t, err.Error(), `rule "b": field account: only consumer_lag, consumer_stalled, stream_limit, dead_letter_rate and dead_letter_match rules watch other accounts`)
	require.Contains(t, err.Error(), `rule "c": field account: "[" is not a valid pattern`)
}

// Dead-letter rules with an account pattern watch jetwatch's own account
// and each --account whose name matches, each through that account's own
// index, labelling each instance with its account; without one they watch
// jetwatch's own account's dead letters only, unlabelled, as before.
func TestDeadLetterRulesWithAnAccountWatchEachCapturedAccount(t *testing.T) {
	t.Parallel()
	b := setup(t, `rules:
  - {name: everywhere, kind: dead_letter_match, account: '*', receivers: [ops]}
  - {name: b-only, kind: dead_letter_match, account: 'B*', receivers: [ops]}
  - {name: here, kind: dead_letter_match, receivers: [ops]}
  - {name: b-rate, kind: dead_letter_rate, account: B, above: 1, window: 5m, receivers: [ops]}
`)
	b.deadLetter(t, "orders.eu.paid", 1)

	// Account B: its own server, DLQ stream and index partition, with two
	// dead letters of another consumer.
	ctx := context.Background()
	ncB := natstest.Connect(t, natstest.RunServer(t))
	jsB, err := jetstream.New(ncB)
	require.NoError(t, err)
	require.NoError(t, collector.EnsureStreams(ctx, jsB, collector.StreamsConfig{}))
	dbB, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "B.db"))
	require.NoError(t, err)
	t.Cleanup(func() { dbB.Close() })
	for i := range 2 {
		m := nats.NewMsg(dlq.Subject("ORDERS", "shipping"))
		m.Data = []byte(`{"order":2}`)
		dlq.Envelope{Stream: "ORDERS", Subject: "orders.eu.paid", Sequence: uint64(i + 1), Consumer: "shipping", Deliveries: 5,
			Reason: dlq.ReasonMaxDeliver, FailedAt: b.clock.Now()}.Apply(m.Header)
		_, err := jsB.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	ix, err := index.New(ncB, dbB, index.Config{})
	require.NoError(t, err)
	require.NoError(t, ix.CatchUp(ctx))

	e, err := alert.NewEvaluator(b.js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return b.rules },
		Index: b.db, DeadLetters: query.New(b.db, nil, ""), Now: b.clock.Now, Registerer: prometheus.NewRegistry(),
		Accounts:           func() (string, []store.Account) { return "APP", nil },
		DeadLetterAccounts: []alert.DeadLetterAccount{{Name: "B", DeadLetters: query.New(dbB, nil, "")}, {Name: "C", DeadLetters: query.New(b.db, nil, "")}}})
	require.NoError(t, err)
	b.evaluate(t, e)

	statuses, _ := e.Statuses()
	got := map[string][]map[string]string{}
	summaries := map[string][]string{}
	for _, s := range statuses {
		for _, in := range s.Instances {
			got[s.Rule.Name] = append(got[s.Rule.Name], in.Labels)
			summaries[s.Rule.Name] = append(summaries[s.Rule.Name], in.Summary)
		}
	}
	for _, l := range got {
		slices.SortFunc(l, func(a, b map[string]string) int { return strings.Compare(a["account"], b["account"]) })
	}
	require.Equal(t, []map[string]string{
		{"account": "APP", "stream": "ORDERS", "consumer": "billing"},
		{"account": "B", "stream": "ORDERS", "consumer": "shipping"},
		{"account": "C", "stream": "ORDERS", "consumer": "billing"},
	}, got["everywhere"])
	require.Equal(t, []map[string]string{{"account": "B", "stream": "ORDERS", "consumer": "shipping"}}, got["b-only"])
	require.Equal(t, []map[string]string{{"stream": "ORDERS", "consumer": "billing"}}, got["here"], "no account: jetwatch's own, unlabelled")
	require.Equal(t, []map[string]string{{"account": "B", "stream": "ORDERS", "consumer": "shipping"}}, got["b-rate"])
	require.Equal(t, []string{"2 pending dead letters from ORDERS/shipping in account B match rule b-only"}, summaries["b-only"])
}
