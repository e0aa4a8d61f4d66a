package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// lagBench is a stream with real consumers whose lag a test drives: each
// step publishes, has shipping fetch and acknowledge, advances the fake
// clock by 10 s and samples.
type lagBench struct {
	t        *testing.T
	s        *Sampler
	b        *testBundle
	shipping jetstream.Consumer
	// pending is what shipping has not yet acknowledged.
	pending uint64
}

func newLagBench(t *testing.T) *lagBench {
	_, b := setup(t)
	ctx := context.Background()
	stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	publish(t, b.js, "orders.created", 100)
	lb := &lagBench{t: t, s: lagSampler(t, b), b: b, pending: 100}
	durable := func(cfg jetstream.ConsumerConfig) jetstream.Consumer {
		cfg.AckPolicy = jetstream.AckExplicitPolicy
		c, err := stream.CreateOrUpdateConsumer(ctx, cfg)
		require.NoError(t, err)
		return c
	}
	lb.shipping = durable(jetstream.ConsumerConfig{Durable: "shipping"})
	durable(jetstream.ConsumerConfig{Durable: "idle"})
	durable(jetstream.ConsumerConfig{Durable: "gone"})
	durable(jetstream.ConsumerConfig{Durable: "notifier", FilterSubject: "orders.paid"})
	// stuck takes its 5 messages and never acknowledges them, while its
	// pull request waits for more.
	stuck := durable(jetstream.ConsumerConfig{Durable: "stuck", MaxAckPending: 5})
	cc, err := stuck.Consume(func(jetstream.Msg) {}, jetstream.PullExpiry(time.Minute))
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info, err := stuck.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 5 || info.NumWaiting == 0 {
			return fmt.Errorf("stuck has %d ack pending and %d pull requests waiting", info.NumAckPending, info.NumWaiting)
		}
		return nil
	})
	return lb
}

// lagSampler is a sampler of b sampling every 10 s, as by default, so
// its window spans what the fake clock's 10 s steps do.
func lagSampler(t *testing.T, b *testBundle) *Sampler {
	b.reg = prometheus.NewRegistry()
	s, err := NewSampler(b.nc, b.db, SamplerConfig{Interval: 10 * time.Second, StallAfter: time.Minute,
		Registerer: b.reg, Logger: testLogger(t), Now: b.clock.Now, JSZTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	return s
}

// step publishes n orders, has shipping acknowledge acks of them, and
// samples 10 s later.
func (lb *lagBench) step(n, acks int) {
	lb.t.Helper()
	ctx := context.Background()
	publish(lb.t, lb.b.js, "orders.created", n)
	acked := acks
	for acks > 0 {
		batch, err := lb.shipping.Fetch(acks, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(lb.t, err)
		for m := range batch.Messages() {
			require.NoError(lb.t, m.DoubleAck(ctx))
			acks--
		}
		require.NoError(lb.t, batch.Error())
	}
	// The server counts a consumer's pending messages as it learns of
	// them, a moment after the publish: sample once it has.
	lb.pending = lb.pending + uint64(n) - uint64(acked)
	natstest.CheckFor(lb.t, 10*time.Second, 5*time.Millisecond, func() error {
		info, err := lb.shipping.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != lb.pending || info.NumAckPending != 0 {
			return fmt.Errorf("shipping has %d pending, %d unacknowledged, want %d", info.NumPending, info.NumAckPending, lb.pending)
		}
		return nil
	})
	lb.b.clock.Advance(10 * time.Second)
	_, err := lb.s.SampleOnce(ctx)
	require.NoError(lb.t, err)
}

func (lb *lagBench) consumer(name string) store.Consumer {
	lb.t.Helper()
	c, err := lb.b.db.Consumer(context.Background(), "ORDERS", name)
	require.NoError(lb.t, err)
	return c
}

// TestSamplerJudgesLagAsATrend drives real consumers through the lag
// states: a growing backlog is falling behind (not ok), a shrinking one
// draining with a time to drain, one taking messages without acking
// stalled, one nobody pulls from and one deleted stopped. The metric says
// the same, and a restarted sampler continues from the stored samples
// (its lag and its rates).
func TestSamplerJudgesLagAsATrend(t *testing.T) {
	t.Parallel()
	lb := newLagBench(t)
	ctx := context.Background()

	lb.step(20, 12)
	require.NoError(t, lb.b.js.DeleteConsumer(ctx, "ORDERS", "gone"))
	deletedAt := lb.b.clock.Now().Add(10 * time.Second).UTC().Truncate(time.Millisecond)
	lb.step(20, 12)
	require.Equal(t, store.LagOK, lb.consumer("shipping").LagState, "two samples are too few to see a trend")
	for range 8 {
		lb.step(20, 12)
	}

	// 20 arrive and 12 are acknowledged every 10 s.
	shipping := lb.consumer("shipping")
	require.Equal(t, store.LagFallingBehind, shipping.LagState)
	require.Equal(t, uint64(100+10*(20-12)), shipping.NumPending)
	require.InDelta(t, 2.0, shipping.ArrivalPerSec, 0.001)
	require.InDelta(t, 1.2, shipping.AckPerSec, 0.001)
	require.InDelta(t, 90, shipping.LagWindowSeconds, 0.001)
	// From the last two samples: 12 delivered and acked in 10 s.
	require.InDelta(t, 1.2, shipping.DeliveredPerSec, 0.001)
	require.InDelta(t, 1.2, shipping.AckedPerSec, 0.001)
	require.Nil(t, shipping.DrainSeconds)
	require.Equal(t, store.HealthWarning, shipping.Health.Level)
	require.Contains(t, shipping.Health.Reasons[0], "falling behind: 180 pending and rising (2.0/s arriving, 1.2/s acknowledged")
	require.False(t, shipping.Stalled)

	stuck := lb.consumer("stuck")
	require.Equal(t, store.LagStalled, stuck.LagState, stuck.Health.Reasons)
	require.Equal(t, store.HealthCritical, stuck.Health.Level)
	require.Contains(t, stuck.Health.Reasons[0], "nothing delivered or acknowledged for")
	require.Contains(t, stuck.Health.Reasons[0], "pull request")
	require.True(t, stuck.Stalled)

	idle := lb.consumer("idle")
	require.Equal(t, store.LagStopped, idle.LagState, idle.Health.Reasons)
	require.Equal(t, store.HealthCritical, idle.Health.Level)
	require.Contains(t, idle.Health.Reasons[0], "stopped: nobody is consuming (no pull requests waiting)")

	gone := lb.consumer("gone")
	require.Equal(t, store.LagStopped, gone.LagState)
	require.NotNil(t, gone.DeletedAt)
	require.Equal(t, deletedAt, gone.DeletedAt.UTC())
	require.Equal(t, uint64(0), gone.NumPending, "nothing of a deleted consumer is pending")
	require.Equal(t, store.HealthWarning, gone.Health.Level)

	require.Equal(t, store.LagOK, lb.consumer("notifier").LagState, "nothing was published for it")
	st, err := lb.b.db.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	require.Equal(t, store.HealthCritical, st.Health.Level)
	reasons := strings.Join(st.Health.Reasons, "\n")
	// The worst three are named, critical first; shipping, a warning
	// like gone and after it by name, is counted.
	for _, want := range []string{"consumer stuck: stalled", "consumer idle: stopped", "consumer gone: deleted",
		"consumers: 1 more is unwell (warning)"} {
		require.Contains(t, reasons, want)
	}

	// Nothing more arrives and shipping acknowledges 40 every 10 s.
	for range 3 {
		lb.step(0, 40)
	}
	shipping = lb.consumer("shipping")
	require.Equal(t, store.LagDraining, shipping.LagState, shipping.Health.Reasons)
	require.Equal(t, uint64(60), shipping.NumPending)
	require.NotNil(t, shipping.DrainSeconds)
	// The window's oldest sample had 132 pending: 72 fewer in 90 s.
	require.InDelta(t, 75, *shipping.DrainSeconds, 0.01)
	require.Equal(t, store.HealthOK, shipping.Health.Level)
	require.Empty(t, shipping.Health.Reasons, "catching up is nothing to do")

	families := scrape(t, lb.s, lb.b)
	for name, want := range map[string]float64{"notifier": 0, "shipping": 1, "stuck": 3, "idle": 4, "gone": 4} {
		require.Equal(t, want, gaugeValue(t, families, "jetwatch_consumer_lag_state", map[string]string{"stream_name": "ORDERS", "consumer_name": name}), name)
	}
	for _, m := range families["jetstream_consumer_num_pending"].GetMetric() {
		for _, l := range m.GetLabel() {
			require.False(t, l.GetName() == "consumer_name" && l.GetValue() == "gone", "a deleted consumer has only its lag state")
		}
	}

	// A restarted sampler judges from the stored samples at once, and
	// keeps the deleted consumer as deleted when it was.
	lb.s = lagSampler(t, lb.b)
	lb.step(0, 10)
	shipping = lb.consumer("shipping")
	require.Equal(t, store.LagDraining, shipping.LagState, "judged from the stored window, not one new sample")
	require.InDelta(t, 90, shipping.LagWindowSeconds, 0.001)
	// Its rates come from the newest stored sample: 10 acked in 10 s.
	require.InDelta(t, 1.0, shipping.DeliveredPerSec, 0.001)
	require.InDelta(t, 1.0, shipping.AckedPerSec, 0.001)
	gone = lb.consumer("gone")
	require.NotNil(t, gone.DeletedAt)
	require.Equal(t, deletedAt, gone.DeletedAt.UTC())

	// Caught up: ok again.
	lb.step(0, 50)
	require.Equal(t, store.LagOK, lb.consumer("shipping").LagState)
}

// TestOpenBreakerMakesItsConsumerAWarning: a consumer that keeps up is a
// warning while a breaker of the service behind it is open or half-open.
func TestOpenBreakerMakesItsConsumerAWarning(t *testing.T) {
	t.Parallel()
	lb := newLagBench(t)
	ctx := context.Background()
	lb.step(0, 0)
	require.Equal(t, store.HealthOK, lb.consumer("notifier").Health.Level)

	save := func(state string) {
		now := lb.b.clock.Now()
		_, err := lb.b.db.SaveBreaker(ctx, store.Breaker{Service: "notifier", Breaker: "email-gateway", Stream: "ORDERS", Consumer: "notifier",
			State: state, Since: now.Add(-time.Minute), UpdatedAt: now, HeartbeatSeconds: 3600, LastError: "connection refused"})
		require.NoError(t, err)
	}
	// A half-open probe belongs to the outage the open began: "since"
	// stays the episode's start, one step (10 s) further back.
	for _, step := range []struct{ state, since string }{{store.BreakerOpen, "1m 10s"}, {store.BreakerHalfOpen, "1m 20s"}} {
		state, since := step.state, step.since
		save(state)
		lb.step(0, 0)
		n := lb.consumer("notifier")
		require.Equal(t, store.LagOK, n.LagState, "a breaker is not lag")
		require.Equal(t, store.HealthWarning, n.Health.Level)
		require.Equal(t, []string{"breaker email-gateway of service notifier is " + state + " since " + since + " ago: the service pauses consumption while it is open"}, n.Health.Reasons)
		st, err := lb.b.db.Stream(ctx, "ORDERS")
		require.NoError(t, err)
		require.Contains(t, strings.Join(st.Health.Reasons, "\n"), "consumer notifier: breaker email-gateway of service notifier is "+state)
	}
	save(store.BreakerClosed)
	lb.step(0, 0)
	require.Equal(t, store.HealthOK, lb.consumer("notifier").Health.Level)
}

// TestSamplerShowsAPausedConsumerAsPaused: a consumer paused on the server
// falls behind on purpose. It is judged paused (not stopped or stalled),
// its health says until when, and the metrics say it is paused, so lag
// and stall alerts can leave it out.
func TestSamplerShowsAPausedConsumerAsPaused(t *testing.T) {
	t.Parallel()
	lb := newLagBench(t)
	ctx := context.Background()
	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	_, err := lb.b.js.PauseConsumer(ctx, "ORDERS", "idle", until)
	require.NoError(t, err)
	// A full window with messages arriving and nobody consuming: idle
	// would be stopped, and stalled, were it not paused.
	for range lagWindowSamples + 1 {
		lb.step(20, 0)
	}
	idle := lb.consumer("idle")
	require.True(t, idle.Paused)
	require.NotNil(t, idle.PauseUntil)
	require.True(t, until.Equal(*idle.PauseUntil), "the server's pause_until: %s", idle.PauseUntil)
	require.Equal(t, store.LagPaused, idle.LagState)
	require.False(t, idle.Stalled)
	require.Nil(t, idle.StalledSince)
	require.Equal(t, store.HealthWarning, idle.Health.Level)
	require.Equal(t, []string{"paused until " + until.Format(time.RFC3339) + ": the server delivers nothing to it until then, so its pending grows"}, idle.Health.Reasons)
	require.Greater(t, idle.NumPending, uint64(200), "it fell behind meanwhile")

	families := scrape(t, lb.s, lb.b)
	labels := map[string]string{"stream_name": "ORDERS", "consumer_name": "idle"}
	require.Equal(t, float64(5), gaugeValue(t, families, "jetwatch_consumer_lag_state", labels))
	require.Equal(t, float64(0), gaugeValue(t, families, "jetwatch_consumer_stalled", labels))
	require.Equal(t, float64(1), gaugeValue(t, families, "jetwatch_consumer_paused", labels))
	require.Equal(t, float64(until.Unix()), gaugeValue(t, families, "jetwatch_consumer_pause_until_timestamp_seconds", labels))
	for _, m := range families["jetwatch_consumer_paused"].GetMetric() {
		for _, l := range m.GetLabel() {
			require.False(t, l.GetName() == "consumer_name" && l.GetValue() != "idle", "only paused consumers have the series")
		}
	}

	// Resumed, it is judged by its lag again: nobody consumes it.
	_, err = lb.b.js.ResumeConsumer(ctx, "ORDERS", "idle")
	require.NoError(t, err)
	lb.step(0, 0)
	idle = lb.consumer("idle")
	require.False(t, idle.Paused)
	require.Nil(t, idle.PauseUntil)
	require.Equal(t, store.LagStopped, idle.LagState)
	require.Equal(t, store.HealthCritical, idle.Health.Level)
}
