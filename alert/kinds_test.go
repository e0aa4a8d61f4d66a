package alert_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// deadLetter publishes a dead letter of ORDERS/billing to the DLQ stream
// and indexes it, as the bridge and the index do.
func (b *testBundle) deadLetter(t *testing.T, subject string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, collector.EnsureStreams(ctx, b.js, collector.StreamsConfig{}))
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":1}`)
	dlq.Envelope{Stream: "ORDERS", Subject: subject, Sequence: seq, Consumer: "billing", Deliveries: 5,
		Reason: dlq.ReasonMaxDeliver, Error: "payment gateway timeout", FailedAt: time.Now()}.Apply(m.Header)
	_, err := b.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	b.catchUp(t)
}

func (b *testBundle) catchUp(t *testing.T) {
	t.Helper()
	ix, err := index.New(b.nc, b.db, index.Config{})
	require.NoError(t, err)
	require.NoError(t, ix.CatchUp(context.Background()))
}

// TestEachKindFiresAndResolves makes each kind's condition true against a
// real server and index, then clears it.
func TestEachKindFiresAndResolves(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind, rule  string
		make, clear func(t *testing.T, b *testBundle)
		labels      map[string]string
	}{{
		kind: alert.KindConsumerStalled,
		rule: "{name: r, kind: consumer_stalled, stream: ORD*, for: 1s, receivers: [ops]}",
		make: func(t *testing.T, b *testBundle) { b.orders(t, 5); b.clock.CatchUp(); b.clock.Advance(2 * time.Second) },
		clear: func(t *testing.T, b *testBundle) {
			cons, err := b.js.Consumer(context.Background(), "ORDERS", "billing")
			require.NoError(t, err)
			drain(t, cons)
		},
		labels: map[string]string{"stream": "ORDERS", "consumer": "billing"},
	}, {
		kind: alert.KindStreamLimit,
		rule: "{name: r, kind: stream_limit, stream: ORDERS, above: 50, receivers: [ops]}",
		make: func(t *testing.T, b *testBundle) { b.orders(t, 60) },
		clear: func(t *testing.T, b *testBundle) {
			st, err := b.js.Stream(context.Background(), "ORDERS")
			require.NoError(t, err)
			require.NoError(t, st.Purge(context.Background()))
		},
		labels: map[string]string{"stream": "ORDERS", "limit": "messages"},
	}, {
		kind: alert.KindBreakerOpen,
		rule: "{name: r, kind: breaker_open, service: notif*, for: 30s, keep_firing_for: 0s, receivers: [ops]}",
		make: func(t *testing.T, b *testBundle) {
			now := b.clock.Now()
			_, err := b.db.SaveBreaker(context.Background(), store.Breaker{Service: "notifier", Breaker: "smtp", State: store.BreakerOpen,
				Since: now.Add(-time.Minute), UpdatedAt: now, HeartbeatSeconds: 3600, LastError: "connection refused"})
			require.NoError(t, err)
		},
		clear: func(t *testing.T, b *testBundle) {
			now := b.clock.Now()
			_, err := b.db.SaveBreaker(context.Background(), store.Breaker{Service: "notifier", Breaker: "smtp", State: store.BreakerClosed,
				Since: now, UpdatedAt: now, HeartbeatSeconds: 3600})
			require.NoError(t, err)
		},
		labels: map[string]string{"service": "notifier", "breaker": "smtp"},
	}, {
		kind: alert.KindDeadLetterRate,
		rule: "{name: r, kind: dead_letter_rate, consumer: bill*, above: 2, window: 5m, receivers: [ops]}",
		make: func(t *testing.T, b *testBundle) {
			for i := range 3 {
				b.deadLetter(t, "orders.eu.paid", uint64(i+1))
			}
		},
		clear:  func(t *testing.T, b *testBundle) { b.clock.Advance(6 * time.Minute) },
		labels: map[string]string{"stream": "ORDERS", "consumer": "billing"},
	}, {
		kind: alert.KindDeadLetterMatch,
		rule: "{name: r, kind: dead_letter_match, subject: 'orders.*.paid', search: gateway, receivers: [ops]}",
		make: func(t *testing.T, b *testBundle) {
			b.deadLetter(t, "orders.us.created", 1) // no match
			b.deadLetter(t, "orders.eu.paid", 2)
		},
		clear: func(t *testing.T, b *testBundle) {
			r, err := redeliver.New(b.nc, b.db, redeliver.Config{})
			require.NoError(t, err)
			page, err := query.New(b.db, nil, "").List(context.Background(), store.DeadLetterFilter{Subject: "orders.eu.paid"}, 10, "")
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			_, err = r.Discard(context.Background(), page.Items[0].ID, "ann", "test order")
			require.NoError(t, err)
			b.catchUp(t)
		},
		labels: map[string]string{"stream": "ORDERS", "consumer": "billing"},
	}, {
		kind: alert.KindAdvisory,
		rule: "{name: r, kind: advisory, event: leader_elected, stream: ORDERS, above: 1, window: 10m, receivers: [ops]}",
		make: func(t *testing.T, b *testBundle) {
			// Advisories as the server sends them, through jetwatch's
			// capture stream and timeline; a single server elects no
			// leaders, so they are published here.
			ctx := context.Background()
			require.NoError(t, collector.EnsureStreams(ctx, b.js, collector.StreamsConfig{}))
			tl, err := collector.NewTimeline(b.nc, b.db, collector.TimelineConfig{Registerer: prometheus.NewRegistry()})
			require.NoError(t, err)
			require.NoError(t, tl.Start(ctx))
			t.Cleanup(tl.Stop)
			for i := range 2 {
				// Each with its own id, as the server sends them: one body
				// stored twice (the relay's copy) is one advisory.
				adv := fmt.Sprintf(`{"type":"io.nats.jetstream.advisory.v1.stream_leader_elected","id":"adv%d","timestamp":%q,"stream":"ORDERS","leader":"n2"}`,
					i, b.clock.Now().Format(time.RFC3339Nano))
				require.NoError(t, b.nc.Publish("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.ORDERS", []byte(adv)))
			}
			natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
				events, err := b.db.Events(ctx, store.EventFilter{Kind: "stream_leader_elected"})
				if err != nil || len(events) < 2 {
					return fmt.Errorf("timeline has %d leader elections (%v)", len(events), err)
				}
				return nil
			})
		},
		clear:  func(t *testing.T, b *testBundle) { b.clock.Advance(11 * time.Minute) },
		labels: map[string]string{"event": "leader_elected", "stream": "ORDERS"},
	}}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "rules:\n  - "+tc.rule+"\n")
			e := b.evaluator(t, b.db, b.clock.Now)
			b.sender(t, b.db)
			b.evaluate(t, e)
			require.Equal(t, alert.StateInactive, state(t, e, "r"), "nothing is wrong yet")
			tc.make(t, b)
			b.evaluate(t, e)
			require.Equal(t, alert.StateFiring, state(t, e, "r"))
			got := waitNotifications(t, b.recv, 1)
			require.Equal(t, alert.StatusFiring, got[0].Status)
			require.Equal(t, tc.kind, got[0].Kind)
			require.Equal(t, tc.labels, got[0].Labels, got[0].Summary)
			tc.clear(t, b)
			b.evaluate(t, e)
			require.Equal(t, alert.StateInactive, state(t, e, "r"), fmt.Sprint(e.Statuses()))
			got = waitNotifications(t, b.recv, 2)
			require.Equal(t, alert.StatusResolved, got[1].Status)
		})
	}
}
