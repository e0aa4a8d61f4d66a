package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// storm is a failure storm on a 3-node cluster: n messages that a service
// fails once each, with jetwatch's relay and bridge on a node that stays
// up, while the capture stream's leader is taken away.
type storm struct {
	t       *testing.T
	n       int
	c       *natstest.Cluster
	ctx     context.Context
	admin   jetstream.JetStream
	cons    jetstream.Consumer
	relay   *Relay
	leader  int // of the stream at stake
	pulling context.CancelFunc
}

func newStorm(t *testing.T, n, captureReplicas int) *storm {
	return newStormAround(t, n, captureReplicas, DefaultAdvisoryStream)
}

// newStormAround is newStorm with leader the leader of stream at stake.
func newStormAround(t *testing.T, n, captureReplicas int, stream string) *storm {
	t.Helper()
	c := natstest.RunCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	admin, err := nats.Connect(c.URLs())
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	ajs, err := jetstream.New(admin)
	require.NoError(t, err)
	streams := StreamsConfig{Replicas: captureReplicas}
	require.NoError(t, EnsureStreams(ctx, ajs, streams))
	for _, name := range []string{DefaultDLQStream, DefaultActionsStream} {
		s, err := ajs.Stream(ctx, name)
		require.NoError(t, err)
		cfg := s.CachedInfo().Config
		cfg.Replicas = 3 // only the capture stream is at stake here
		_, err = ajs.UpdateStream(ctx, cfg)
		require.NoError(t, err)
	}
	_, err = ajs.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
	require.NoError(t, err)
	s := &storm{t: t, n: n, c: c, ctx: ctx, admin: ajs, leader: c.WaitForStreamLeader(stream)}
	other := (s.leader + 1) % 3 // jetwatch and the service stay connected

	jw, err := nats.Connect(c.URL(other), nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(jw.Close)
	s.relay, err = NewRelay(jw, RelayConfig{Streams: streams, Registerer: prometheus.NewRegistry(), Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, s.relay.Start(ctx))
	t.Cleanup(s.relay.Stop)
	bridge, err := NewBridge(jw, BridgeConfig{Streams: streams, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, bridge.Start(ctx))
	t.Cleanup(bridge.Stop)

	svc, err := nats.Connect(c.URL(other), nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	sjs, err := jetstream.New(svc)
	require.NoError(t, err)
	for i := range n {
		_, err := sjs.PublishAsync(fmt.Sprintf("orders.%d", i), []byte(`{"order":1}`))
		require.NoError(t, err)
	}
	<-sjs.PublishAsyncComplete()
	s.cons, err = sjs.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy,
		MaxDeliver: 1, AckWait: 500 * time.Millisecond, MaxAckPending: -1, Replicas: 3})
	require.NoError(t, err)
	var pulling context.Context
	pulling, s.pulling = context.WithCancel(ctx)
	t.Cleanup(s.pulling)
	go func() {
		for pulling.Err() == nil {
			// Never acked: each message is given up after its one delivery.
			if b, err := s.cons.Fetch(500, jetstream.FetchMaxWait(200*time.Millisecond)); err == nil {
				for range b.Messages() {
				}
			}
		}
	}()
	return s
}

func (s *storm) captured() uint64 {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	st, err := s.admin.Stream(ctx, DefaultDLQStream)
	if err != nil {
		return 0 // asked again: a node that just came back may not answer at once
	}
	return st.CachedInfo().State.Msgs
}

func (s *storm) relayed(result string) float64 {
	var m dto.Metric
	require.NoError(s.t, s.relay.results.WithLabelValues(result).Write(&m))
	return m.GetCounter().GetValue()
}

// waitCaptured waits until every failure is a dead letter, and checks
// each is there once and the relay dropped none.
func (s *storm) waitCaptured() {
	s.t.Helper()
	natstest.CheckFor(s.t, time.Minute, 100*time.Millisecond, func() error {
		if got := s.captured(); got < uint64(s.n) {
			return fmt.Errorf("%d of %d dead letters captured", got, s.n)
		}
		return nil
	})
	require.Equal(s.t, uint64(s.n), s.captured(), "each once")
	s.t.Logf("captured %d of %d; relay: stored %.0f, retried %.0f, dropped %.0f",
		s.captured(), s.n, s.relayed("stored"), s.relayed("retried"), s.relayed("dropped"))
	require.Zero(s.t, s.relayed("dropped"))
}

// The capture stream's leader dies in the middle of a storm (R3: another
// replica takes over after an election).
func TestDeadLettersSurviveTheCaptureStreamLosingItsLeader(t *testing.T) {
	t.Parallel()
	s := newStorm(t, 2000, 3)
	natstest.CheckFor(t, time.Minute, 10*time.Millisecond, func() error {
		if got := s.captured(); got < uint64(s.n/5) {
			return fmt.Errorf("%d dead letters so far", got)
		}
		return nil
	})
	s.c.Stop(s.leader)
	t.Logf("stopped the capture stream's leader with %d of %d dead letters captured", s.captured(), s.n)
	s.waitCaptured()
}

// The capture stream (R1) is away for the whole storm: no server stores
// an advisory, and the relay's retried copies are all that keeps the
// dead letters until it is back.
func TestDeadLettersSurviveACaptureStreamAwayForTheWholeStorm(t *testing.T) {
	t.Parallel()
	s := newStorm(t, 500, 1)
	s.c.Stop(s.leader)
	// Every message is given up (its advisory sent) while it is away.
	natstest.CheckFor(t, time.Minute, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		defer cancel()
		info, err := s.cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("%d pending, %d awaiting acks", info.NumPending, info.NumAckPending)
		}
		if s.relayed("retried") < float64(s.n) {
			return fmt.Errorf("%.0f advisories waiting in the relay", s.relayed("retried"))
		}
		return nil
	})
	s.c.Start(s.leader)
	s.waitCaptured()
}

// The DLQ stream's leader dies in the middle of a storm: the bridge's
// publishes fail until a new leader is elected, and it retries them.
func TestDeadLettersSurviveTheDLQLosingItsLeader(t *testing.T) {
	t.Parallel()
	s := newStormAround(t, 2000, 3, DefaultDLQStream)
	natstest.CheckFor(t, time.Minute, 10*time.Millisecond, func() error {
		if got := s.captured(); got < uint64(s.n/5) {
			return fmt.Errorf("%d dead letters so far", got)
		}
		return nil
	})
	s.c.Stop(s.leader)
	s.waitCaptured()
}
