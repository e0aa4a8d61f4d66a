package collector

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// fakeClock is a settable clock shared by the sampler under test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	srv   *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	db    *store.DB
	clock *fakeClock
	reg   *prometheus.Registry
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func setup(t *testing.T, opts ...natstest.Option) (*Sampler, *testBundle) {
	t.Helper()
	srv := natstest.RunServer(t, opts...)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	db, err := store.OpenFile(context.Background(), filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	clock := &fakeClock{now: time.Now()}
	reg := prometheus.NewRegistry()
	s, err := NewSampler(nc, db, SamplerConfig{
		Interval:   time.Second,
		StallAfter: time.Minute,
		Registerer: reg,
		Logger:     testLogger(t),
		Now:        clock.Now,
		JSZTimeout: 500 * time.Millisecond,
	})
	require.NoError(t, err)
	return s, &testBundle{srv: srv, nc: nc, js: js, db: db, clock: clock, reg: reg}
}

func publish(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		_, err := js.Publish(context.Background(), subject, fmt.Appendf(nil, "msg %d", i))
		require.NoError(t, err)
	}
}

func TestSamplerRecordsWhatTheServerReports(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()

	stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 20, Discard: jetstream.DiscardNew,
	})
	require.NoError(t, err)
	publish(t, b.js, "orders.created", 10)
	billing, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 5,
		AckWait: 30 * time.Second, BackOff: []time.Duration{time.Second, 5 * time.Second},
	})
	require.NoError(t, err)
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "orders.created",
	})
	require.NoError(t, err)

	// Deliver three to billing and ack one: 7 pending, 2 awaiting ack.
	batch, err := billing.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	require.Len(t, got, 3)
	require.NoError(t, got[0].DoubleAck(ctx))

	cycle, err := s.SampleOnce(ctx)
	require.NoError(t, err)
	require.True(t, cycle.StreamsComplete)

	st, err := b.db.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	require.Equal(t, uint64(10), st.Messages)
	require.Equal(t, uint64(1), st.FirstSeq)
	require.Equal(t, uint64(10), st.LastSeq)
	require.Equal(t, 2, st.ConsumerCount)
	require.Equal(t, "limits", st.Retention)
	require.Equal(t, "new", st.Limits.Discard)
	require.NotNil(t, st.Limits.MsgsUsedPct)
	require.InDelta(t, 50.0, *st.Limits.MsgsUsedPct, 0.001)
	require.Nil(t, st.Limits.BytesUsedPct, "unlimited bytes has no usage")
	require.Equal(t, store.HealthOK, st.Health.Level, st.Health.Reasons)
	require.Contains(t, string(st.Config), `"name":"ORDERS"`)

	c, err := b.db.Consumer(ctx, "ORDERS", "billing")
	require.NoError(t, err)
	require.Equal(t, uint64(7), c.NumPending)
	require.Equal(t, 2, c.NumAckPending)
	require.Equal(t, uint64(3), c.Delivered.ConsumerSeq)
	require.Equal(t, uint64(3), c.Delivered.StreamSeq)
	require.Equal(t, uint64(1), c.AckFloor.StreamSeq)
	require.NotNil(t, c.Delivered.LastActive)
	require.Equal(t, 5, c.MaxDeliver)
	require.Equal(t, 1.0, c.AckWaitSeconds, "the server replaces AckWait with the first BackOff step")
	require.Equal(t, []float64{1, 5}, c.BackOffSeconds)
	require.Equal(t, "explicit", c.AckPolicy)
	require.True(t, c.Durable)

	audit, err := b.db.Consumer(ctx, "ORDERS", "audit")
	require.NoError(t, err)
	require.Equal(t, uint64(10), audit.NumPending, "lag after publishing without consuming")
	require.Equal(t, []string{"orders.created"}, audit.FilterSubjects)

	// Rates come from the delta to the previous sample.
	publish(t, b.js, "orders.created", 5)
	// The server counts a filtered consumer's pending messages as they
	// reach it, a moment after the publish is acknowledged.
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		info, err := stream.Consumer(ctx, "audit")
		if err != nil {
			return err
		}
		if n := info.CachedInfo().NumPending; n != 15 {
			return fmt.Errorf("the server says audit has %d pending, want 15", n)
		}
		return nil
	})
	// Billing gets two more and acknowledges all four outstanding.
	batch, err = billing.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		got = append(got, m)
	}
	require.Len(t, got, 5)
	for _, m := range got[1:] {
		require.NoError(t, m.DoubleAck(ctx))
	}
	b.clock.Advance(10 * time.Second)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	st, err = b.db.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	require.InDelta(t, 0.5, st.InPerSec, 0.0001)
	c, err = b.db.Consumer(ctx, "ORDERS", "billing")
	require.NoError(t, err)
	require.InDelta(t, 0.2, c.DeliveredPerSec, 0.0001, "2 deliveries in 10 s")
	require.InDelta(t, 0.4, c.AckedPerSec, 0.0001, "the ack floor moved by 4 in 10 s")
	require.InDelta(t, 75.0, *st.Limits.MsgsUsedPct, 0.001)
	audit, err = b.db.Consumer(ctx, "ORDERS", "audit")
	require.NoError(t, err)
	require.Equal(t, uint64(15), audit.NumPending)

	hist, err := b.db.ConsumerHistory(ctx, "ORDERS", "audit", b.clock.Now().Add(-time.Minute), b.clock.Now().Add(time.Second), 600)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	require.Equal(t, uint64(10), hist[0].NumPending)
	require.Equal(t, uint64(15), hist[1].NumPending)

	// Metrics are served from the cycle just stored.
	require.Equal(t, 15.0, gaugeValue(t, scrape(t, s, b), "jetstream_consumer_num_pending", map[string]string{"stream_name": "ORDERS", "consumer_name": "audit"}))
}

func TestSamplerMarksStalledAndLimitHealth(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "FULL", Subjects: []string{"full.>"}, MaxMsgs: 10, Discard: jetstream.DiscardNew,
	})
	require.NoError(t, err)
	publish(t, b.js, "full.x", 10)
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "idle", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	b.clock.Advance(2 * time.Minute) // beyond StallAfter with nothing delivered
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)

	c, err := b.db.Consumer(ctx, "FULL", "idle")
	require.NoError(t, err)
	require.True(t, c.Stalled)
	require.NotNil(t, c.StalledSince)
	require.Equal(t, store.LagStopped, c.LagState, "nobody pulls from it")
	require.Equal(t, store.HealthCritical, c.Health.Level)

	st, err := b.db.Stream(ctx, "FULL")
	require.NoError(t, err)
	require.Equal(t, store.HealthCritical, st.Health.Level)
	require.Contains(t, strings.Join(st.Health.Reasons, "; "), "publishes are about to be rejected")
	require.Contains(t, strings.Join(st.Health.Reasons, "; "), "consumer idle: stopped: nobody is consuming")

	stalled, err := b.db.Stalled(ctx, false)
	require.NoError(t, err)
	require.Len(t, stalled, 1)
	require.Equal(t, "idle", stalled[0].Name)
}

func TestSamplerForgetsDeletedAndKeepsHistory(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	for _, name := range []string{"A", "B"} {
		stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}})
		require.NoError(t, err)
		_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c1", AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
		_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c2", AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
	}
	_, err := s.SampleOnce(ctx)
	require.NoError(t, err)

	require.NoError(t, b.js.DeleteStream(ctx, "A"))
	require.NoError(t, b.js.DeleteConsumer(ctx, "B", "c2"))
	b.clock.Advance(time.Second)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)

	streams, err := b.db.Streams(ctx)
	require.NoError(t, err)
	require.Len(t, streams, 1)
	require.Equal(t, "B", streams[0].Name)
	// A deleted durable stays listed, stopped, for DeletedFor: the
	// consumers of a deleted stream go with it.
	cons, err := b.db.Consumers(ctx, "B")
	require.NoError(t, err)
	require.Len(t, cons, 2)
	require.Equal(t, "c1", cons[0].Name)
	require.Nil(t, cons[0].DeletedAt)
	require.Equal(t, "c2", cons[1].Name)
	require.NotNil(t, cons[1].DeletedAt)
	require.Equal(t, store.LagStopped, cons[1].LagState)
	_, err = b.db.Stream(ctx, "A")
	require.ErrorIs(t, err, store.ErrNotFound)
	all, err := b.db.AllConsumers(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2, "the consumers of stream A went with it")

	b.clock.Advance(16 * time.Minute)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	cons, err = b.db.Consumers(ctx, "B")
	require.NoError(t, err)
	require.Len(t, cons, 1)
	require.Equal(t, "c1", cons[0].Name)

	hist, err := b.db.StreamHistory(ctx, "A", b.clock.Now().Add(-time.Hour), b.clock.Now(), 60)
	require.NoError(t, err)
	require.Len(t, hist, 1, "history of a deleted stream stays until retention expires it")
}

func TestSamplerKeepsStoredStateWhenNATSGoesAway(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep"}})
	require.NoError(t, err)
	publish(t, b.js, "keep", 3)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)

	b.srv.Shutdown()
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if b.nc.IsConnected() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	_, err = s.SampleOnce(ctx)
	require.Error(t, err)
	state := s.State()
	require.NotEmpty(t, state.Errors)
	require.Contains(t, state.Errors[0], "NATS is not connected")

	st, err := b.db.Stream(ctx, "KEEP")
	require.NoError(t, err)
	require.Equal(t, uint64(3), st.Messages, "stored state survives a failed cycle")
}

func TestSamplerReadsServerHealthFromSystemAccount(t *testing.T) {
	t.Parallel()
	s, b := setup(t, natstest.WithSystemAccount(t))
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	require.NoError(t, err)

	// The app user cannot ask $SYS: the sampler says why and carries on.
	cycle, err := s.SampleOnce(ctx)
	require.NoError(t, err)
	require.Nil(t, cycle.Servers)
	require.Contains(t, s.State().JSZ, "system-account user")
	require.Len(t, cycle.Streams, 1)

	sys := natstest.Connect(t, b.srv, nats.UserInfo("sys", "sys"))
	s2, err := NewSampler(b.nc, b.db, SamplerConfig{SystemConn: sys, Logger: testLogger(t)})
	require.NoError(t, err)
	cycle, err = s2.SampleOnce(ctx)
	require.NoError(t, err)
	require.Len(t, cycle.Servers, 1)
	require.Equal(t, b.srv.Name(), cycle.Servers[0].Name)
	require.Equal(t, 1, cycle.Servers[0].Streams)
	require.Empty(t, s2.State().JSZ)
	servers, err := b.db.Servers(ctx)
	require.NoError(t, err)
	require.Len(t, servers, 1)
}

func TestSamplerLoopStartsAndStops(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "LOOP", Subjects: []string{"loop"}})
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if !s.State().FirstCycleDone {
			return fmt.Errorf("first cycle not done")
		}
		return nil
	})
	s.Stop()
	s.Stop() // safe twice
	_, err = b.db.Stream(ctx, "LOOP")
	require.NoError(t, err)
}

// gaugeValue finds one gauge by name and labels in scraped families.
func gaugeValue(t *testing.T, families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func TestSamplerLeavesJetwatchsOwnOutOfHealth(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	mk := func(name, subject string) jetstream.Stream {
		st, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}})
		require.NoError(t, err)
		publish(t, b.js, subject, 3)
		return st
	}
	idle := func(st jetstream.Stream, name, description string) {
		_, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, Description: description, AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
	}
	orders := mk("ORDERS", "orders")
	idle(orders, "jetwatch-probe", "")
	idle(orders, "relay", "jetwatch: relays advisories")
	idle(mk("DLQ", "dlq.>"), "reader", "")
	idle(mk("JETWATCH_AUDIT", "jetwatch.audit"), "reader", "")
	_, err := b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "jetwatch_breakers"})
	require.NoError(t, err)
	_, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "sessions"})
	require.NoError(t, err)

	b.clock.Advance(2 * time.Minute) // every consumer above is stalled
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)

	streams, err := b.db.Streams(ctx)
	require.NoError(t, err)
	own := map[string]bool{}
	for _, st := range streams {
		own[st.Name] = st.Own
		require.Equal(t, store.HealthOK, st.Health.Level, "%s: %v", st.Name, st.Health.Reasons)
	}
	require.Equal(t, map[string]bool{"ORDERS": false, "DLQ": true, "JETWATCH_AUDIT": true, "KV_jetwatch_breakers": true, "KV_sessions": false}, own)
	consumers, err := b.db.AllConsumers(ctx)
	require.NoError(t, err)
	require.Len(t, consumers, 4)
	for _, c := range consumers {
		require.True(t, c.Own, "%s/%s", c.Stream, c.Name)
		require.True(t, c.Stalled, "its own health is still judged: %s/%s", c.Stream, c.Name)
	}
	stalled, err := b.db.Stalled(ctx, false)
	require.NoError(t, err)
	require.Empty(t, stalled)
	stalled, err = b.db.Stalled(ctx, true)
	require.NoError(t, err)
	require.Len(t, stalled, 4)
}

func TestReplicaNotHeardFromIsOffline(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	elected := func(ago time.Duration) *time.Time { return ptr(at.Add(-ago)) }
	for _, tc := range []struct {
		name    string
		since   *time.Time
		peer    jetstream.PeerInfo
		offline bool
		level   string
		reason  string
	}{
		{"current and heard from", elected(time.Hour), jetstream.PeerInfo{Name: "n2", Current: true, Active: 300 * time.Millisecond}, false, store.HealthOK, ""},
		{"behind", elected(time.Hour), jetstream.PeerInfo{Name: "n2", Active: time.Second, Lag: 42}, false, store.HealthWarning, "replica n2 is 42 operations behind"},
		{"catching up", elected(time.Hour), jetstream.PeerInfo{Name: "n2", Active: time.Second}, false, store.HealthWarning, "replica n2 is catching up: last seen 1s ago"},
		{"not heard from for 12s", elected(time.Hour), jetstream.PeerInfo{Name: "n2", Active: 12 * time.Second}, true, store.HealthCritical, "replica n2 is offline: last seen 12s ago"},
		{"flagged by the server", elected(time.Hour), jetstream.PeerInfo{Name: "n2", Current: true, Offline: true, Active: time.Second}, true, store.HealthCritical, "replica n2 is offline: last seen 1s ago"},
		// A leader elected after its peer died reports it "0s" ago, 0 behind.
		{"never heard from since an election 9s ago", elected(9 * time.Second), jetstream.PeerInfo{Name: "n2"}, true, store.HealthCritical, "replica n2 is offline: not seen since its leader was elected 9s ago"},
		{"just elected", elected(time.Second), jetstream.PeerInfo{Name: "n2"}, false, store.HealthWarning, "replica n2 is catching up: not seen since its leader was elected 1s ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clusterFromInfo(&jetstream.ClusterInfo{Leader: "n1", LeaderSince: tc.since, Replicas: []*jetstream.PeerInfo{&tc.peer}}, at)
			require.Equal(t, tc.offline, c.Replicas[0].Offline)
			h := store.Health{Level: store.HealthOK}
			judgeCluster(&h, c)
			require.Equal(t, tc.level, h.Level)
			if tc.reason == "" {
				require.Empty(t, h.Reasons)
			} else {
				require.Equal(t, []string{tc.reason}, h.Reasons)
			}
		})
	}
}
