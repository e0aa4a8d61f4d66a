package alert_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/journey"
)

// TestSagaStuckFiresOnceAndResolves: an order that was created and
// neither shipped nor cancelled within 10 minutes fires one alert naming
// it, evaluation after evaluation, and resolves when it ships; an order
// that ended, or is young, does not fire.
func TestSagaStuckFiresOnceAndResolves(t *testing.T) {
	t.Parallel()
	b := setup(t, `rules:
  - {name: stuck, kind: saga_stuck, start: orders.created, end: [orders.shipped, orders.cancelled], within: 10m, key: order, receivers: [ops]}
`)
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAYMENTS", Subjects: []string{"payments.>"}})
	require.NoError(t, err)
	cs, err := journey.ParseCorrelations("order=header:X-Order-Id,order=json:order_id")
	require.NoError(t, err)
	ix, err := journey.NewIndex(b.js, b.db, journey.IndexConfig{Streams: func(s string) bool { return s == "ORDERS" || s == "PAYMENTS" },
		Correlations: cs})
	require.NoError(t, err)
	publish := func(subject, order string) {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Header.Set("X-Order-Id", order)
		m.Data = []byte(`{"order_id":"` + order + `"}`)
		_, err := b.js.PublishMsg(ctx, m)
		require.NoError(t, err)
		require.NoError(t, ix.CatchUp(ctx))
	}
	publish("orders.created", "o-1")
	publish("payments.captured", "o-1")
	publish("orders.created", "o-2")
	publish("orders.cancelled", "o-2")
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	b.clock.CatchUp()
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "stuck"), "o-1 is young yet")

	b.clock.Advance(11 * time.Minute)
	for range 3 {
		b.evaluate(t, e)
		require.Equal(t, alert.StateFiring, state(t, e, "stuck"))
	}
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, alert.StatusFiring, got[0].Status)
	require.Equal(t, alert.KindSagaStuck, got[0].Kind)
	require.Equal(t, map[string]string{"journey": "o-1", "key": "order"}, got[0].Labels)
	require.True(t, strings.HasPrefix(got[0].Summary, "order o-1 started (orders.created) 11m"), got[0].Summary)
	require.Contains(t, got[0].Summary, "its last step: payments.captured")

	publish("orders.shipped", "o-1")
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "stuck"))
	got = waitNotifications(t, b.recv, 2)
	// Delivered in the order published: a second firing of o-1 would
	// come before its resolution.
	require.Len(t, got, 2)
	require.Equal(t, alert.StatusResolved, got[1].Status)
	require.Equal(t, got[0].Fingerprint, got[1].Fingerprint)
}

// TestSagaRuleValidation refuses saga_stuck rules that could never fire
// and says which field to fix.
func TestSagaRuleValidation(t *testing.T) {
	t.Parallel()
	for rule, want := range map[string]string{
		"{name: r, kind: saga_stuck, end: [a.b], within: 1m, key: order, receivers: [ops]}":                     "field start: required",
		"{name: r, kind: saga_stuck, start: 'orders.*', end: [a.b], within: 1m, key: order, receivers: [ops]}":  "field start: required",
		"{name: r, kind: saga_stuck, start: a.a, within: 1m, key: order, receivers: [ops]}":                     "field end: required",
		"{name: r, kind: saga_stuck, start: a.a, end: [a.a], within: 1m, key: order, receivers: [ops]}":         "also the start subject",
		"{name: r, kind: saga_stuck, start: a.a, end: [a.b], key: order, receivers: [ops]}":                     "field within: required",
		"{name: r, kind: saga_stuck, start: a.a, end: [a.b], within: 1m, receivers: [ops]}":                     "field key: required",
		"{name: r, kind: saga_stuck, start: a.a, end: [a.b], within: 1h, window: 1m, key: k, receivers: [ops]}": "at least within",
		"{name: r, kind: breaker_open, start: a.a, receivers: [ops]}":                                           "belong to saga_stuck rules",
	} {
		_, err := alert.Parse([]byte("receivers:\n  - {name: ops, url: 'http://x'}\nrules:\n  - "+rule+"\n"), "rules.yaml", nil)
		require.ErrorIs(t, err, alert.ErrInvalidRules, rule)
		require.Contains(t, err.Error(), want, rule)
	}
}
