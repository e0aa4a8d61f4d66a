package alert_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// TestConsumerLagStatesFireForFallingBehindAndResolveWhenCaughtUp drives
// a real consumer that acknowledges slower than orders arrive, then
// catches up, under a consumer_lag rule with states: it fires once the
// consumer has been falling behind for `for`, stays firing (no second
// page, no resolution) while it catches up, and resolves when draining
// ends: nothing is pending.
func TestConsumerLagStatesFireForFallingBehindAndResolveWhenCaughtUp(t *testing.T) {
	t.Parallel()
	b := setup(t, "rules:\n  - {name: r, kind: consumer_lag, stream: SHIP*, consumer: courier, states: [falling_behind, stalled], for: 30s, receivers: [ops]}\n")
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHIPMENTS", Subjects: []string{"shipments.>"}})
	require.NoError(t, err)
	courier, err := b.js.CreateOrUpdateConsumer(ctx, "SHIPMENTS", jetstream.ConsumerConfig{Durable: "courier", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	// The lag is judged over samples 10 s apart on the tests' clock.
	sampler, err := collector.NewSampler(b.nc, b.db, collector.SamplerConfig{Interval: 10 * time.Second, Now: b.clock.Now,
		Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)

	pending := 0
	step := func(publish, ack int) {
		t.Helper()
		for i := range publish {
			_, err := b.js.Publish(ctx, fmt.Sprintf("shipments.%d", i), []byte("{}"))
			require.NoError(t, err)
		}
		for left := ack; left > 0; {
			batch, err := courier.Fetch(left, jetstream.FetchMaxWait(2*time.Second))
			require.NoError(t, err)
			for m := range batch.Messages() {
				require.NoError(t, m.DoubleAck(ctx))
				left--
			}
			require.NoError(t, batch.Error())
		}
		pending += publish - ack
		natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			info, err := courier.Info(ctx)
			if err != nil {
				return err
			}
			if int(info.NumPending) != pending {
				return fmt.Errorf("courier has %d pending, want %d", info.NumPending, pending)
			}
			return nil
		})
		b.clock.Advance(10 * time.Second)
		_, err := sampler.SampleOnce(ctx)
		require.NoError(t, err)
		require.NoError(t, e.Evaluate(ctx))
	}
	lagState := func() string {
		t.Helper()
		c, err := b.db.Consumer(ctx, "SHIPMENTS", "courier")
		require.NoError(t, err)
		return c.LagState
	}

	// 20 arrive and 12 are acknowledged every 10 s: falling behind from
	// the third sample, pending for 30 s, then firing.
	step(100, 0)
	for lagState() != store.LagFallingBehind {
		require.Less(t, pending, 200, "never judged falling behind")
		require.Equal(t, alert.StateInactive, state(t, e, "r"))
		step(20, 12)
	}
	require.Equal(t, alert.StatePending, state(t, e, "r"))
	for range 3 {
		step(20, 12)
	}
	require.Equal(t, alert.StateFiring, state(t, e, "r"))
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, alert.StatusFiring, got[0].Status)
	require.Equal(t, map[string]string{"stream": "SHIPMENTS", "consumer": "courier"}, got[0].Labels)
	require.Contains(t, got[0].Summary, "consumer courier on SHIPMENTS is falling behind: ")
	require.Contains(t, got[0].Summary, "2.0/s arriving, 1.2/s acknowledged")

	// Nothing more arrives and it acknowledges 40 every 10 s: ok for a
	// while (the window still holds the rise), then draining; firing
	// throughout, and not paged again.
	seen := map[string]bool{}
	for pending > 0 {
		step(0, min(40, pending))
		seen[lagState()] = true
		if pending > 0 {
			require.Equal(t, alert.StateFiring, state(t, e, "r"), "%d pending: not caught up yet", pending)
		}
	}
	require.True(t, seen[store.LagDraining], "it was seen draining: %v", seen)
	require.Equal(t, store.LagOK, lagState())
	require.Equal(t, 0, pending)
	require.Equal(t, alert.StateInactive, state(t, e, "r"))
	// The last step resolved it, and the resolution may already be out:
	// count once the outbox is empty. A second page while catching up
	// would be a third notification, or a firing in second place.
	waitNotifications(t, b.recv, 2)
	settled(t, b.js)
	got = notifications(t, b.recv)
	require.Len(t, got, 2, "one page for the episode, and its resolution")
	require.Equal(t, alert.StatusResolved, got[1].Status)
}

func TestConsumerLagStatesAreChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rule, want string }{
		{"{name: r, kind: consumer_lag, states: [behind], receivers: [ops]}",
			`field states: "behind" is not a lag state: use falling_behind, stalled, stopped, draining or paused`},
		{"{name: r, kind: consumer_lag, states: [ok], receivers: [ops]}", `field states: "ok" is not a lag state`},
		{"{name: r, kind: consumer_stalled, for: 1m, states: [stalled], receivers: [ops]}", "field states: only consumer_lag rules have states"},
	} {
		_, err := alert.Parse([]byte("receivers:\n  - {name: ops, url: http://127.0.0.1:1/hook}\nrules:\n  - "+tc.rule+"\n"), "rules.yaml", nil)
		require.ErrorIs(t, err, alert.ErrInvalidRules)
		require.True(t, strings.Contains(err.Error(), tc.want), err.Error())
	}
	rs, err := alert.Parse([]byte("receivers:\n  - {name: ops, url: http://127.0.0.1:1/hook}\nrules:\n  - {name: r, kind: consumer_lag, states: [falling_behind, stopped], for: 1m, receivers: [ops]}\n"), "rules.yaml", nil)
	require.NoError(t, err)
	require.Equal(t, []string{store.LagFallingBehind, store.LagStopped}, rs.Rules[0].States)
}

// TestREADMEAlertsExampleIsValid parses the rules file README's Alerts
// section shows.
func TestREADMEAlertsExampleIsValid(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Alerts\n")
	require.True(t, ok, "README has an Alerts section")
	_, example, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok, "the Alerts section shows a rules file")
	example, _, _ = strings.Cut(example, "```")
	rs, err := alert.Parse([]byte(example), "README.md", nil)
	require.NoError(t, err)
	require.NotEmpty(t, rs.Rules)
}

// TestPausedConsumerDoesNotPageAsStalledOrStopped: a consumer paused on
// the server with messages waiting and nobody consuming is neither
// stalled nor stopped, so those rules stay quiet; a rule on the number
// pending still fires, and says the consumer is paused until when.
func TestPausedConsumerDoesNotPageAsStalledOrStopped(t *testing.T) {
	t.Parallel()
	b := setup(t, `rules:
  - {name: stalled, kind: consumer_stalled, stream: SHIPMENTS, for: 30s, receivers: [ops]}
  - {name: stopped, kind: consumer_lag, stream: SHIPMENTS, states: [stalled, stopped], receivers: [ops]}
  - {name: backlog, kind: consumer_lag, stream: SHIPMENTS, above: 50, receivers: [ops]}
`)
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHIPMENTS", Subjects: []string{"shipments.>"}})
	require.NoError(t, err)
	courier, err := b.js.CreateOrUpdateConsumer(ctx, "SHIPMENTS", jetstream.ConsumerConfig{Durable: "courier", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	_, err = b.js.PauseConsumer(ctx, "SHIPMENTS", "courier", until)
	require.NoError(t, err)
	sampler, err := collector.NewSampler(b.nc, b.db, collector.SamplerConfig{Interval: 10 * time.Second, StallAfter: time.Minute,
		Now: b.clock.Now, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e := b.evaluator(t, b.db, b.clock.Now)

	for i := range 12 {
		for j := range 10 {
			_, err := b.js.Publish(ctx, fmt.Sprintf("shipments.%d.%d", i, j), []byte("{}"))
			require.NoError(t, err)
		}
		natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			info, err := courier.Info(ctx)
			if err != nil {
				return err
			}
			if int(info.NumPending) != 10*(i+1) {
				return fmt.Errorf("courier has %d pending, want %d", info.NumPending, 10*(i+1))
			}
			return nil
		})
		b.clock.Advance(10 * time.Second)
		_, err = sampler.SampleOnce(ctx)
		require.NoError(t, err)
		require.NoError(t, e.Evaluate(ctx))
	}
	c, err := b.db.Consumer(ctx, "SHIPMENTS", "courier")
	require.NoError(t, err)
	require.Equal(t, store.LagPaused, c.LagState)
	require.Greater(t, c.NumPending, uint64(50))
	require.Equal(t, alert.StateInactive, state(t, e, "stalled"), "paused is not stalled")
	require.Equal(t, alert.StateInactive, state(t, e, "stopped"), "paused is not stopped")
	require.Equal(t, alert.StateFiring, state(t, e, "backlog"))
	statuses, _ := e.Statuses()
	for _, rs := range statuses {
		if rs.Rule.Name == "backlog" {
			require.Len(t, rs.Instances, 1)
			require.Contains(t, rs.Instances[0].Summary, "; it is paused until "+until.Format(time.RFC3339))
		}
	}
}
