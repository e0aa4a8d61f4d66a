package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

func TestAckSubjectMetadataMatchesJetStreams(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	b.publish(t, 3)
	c, err := b.js.Consumer(b.ctx, "JOBS", "worker")
	require.NoError(t, err)
	batch, err := c.Fetch(3)
	require.NoError(t, err)
	n := 0
	for m := range batch.Messages() {
		n++
		want, err := m.Metadata()
		require.NoError(t, err)
		got, err := parseAckSubject(m.Reply())
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	require.Equal(t, 3, n)

	// A newer server's form: domain, account hash, and a token at the end.
	got, err := parseAckSubject("$JS.ACK.hub.ACCHASH.JOBS.worker.2.17.40.1700000000000000000.5.random")
	require.NoError(t, err)
	require.Equal(t, &jetstream.MsgMetadata{Domain: "hub", Stream: "JOBS", Consumer: "worker", NumDelivered: 2,
		Sequence: jetstream.SequencePair{Stream: 17, Consumer: 40}, Timestamp: time.Unix(0, 1700000000000000000), NumPending: 5}, got)
	got, err = parseAckSubject("$JS.ACK._.ACCHASH.JOBS.worker.1.1.1.1.0")
	require.NoError(t, err)
	require.Empty(t, got.Domain)
	for _, bad := range []string{"", "_INBOX.x", "$JS.ACK.JOBS.worker.1.1", "$JS.ACK.a.b.c.d.e.f.g.h"} {
		_, err := parseAckSubject(bad)
		require.ErrorIs(t, err, jetstream.ErrNotJSMessage, bad)
	}
}

func TestHandlerSettlesThroughTheRunnersMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	b.publish(t, 1)
	errs := make(chan [2]error, 1)
	b.runner(t, Config{Concurrency: 2, Handler: func(ctx context.Context, m jetstream.Msg) error {
		first := m.DoubleAck(ctx)
		errs <- [2]error{first, m.Ack()}
		return nil
	}})
	got := <-errs
	require.NoError(t, got[0], "DoubleAck waited for the server's answer")
	require.ErrorIs(t, got[1], jetstream.ErrMsgAlreadyAckd)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.AckFloor.Stream != 1 || info.NumAckPending != 0 {
			return fmt.Errorf("ack floor %d, ack pending %d", info.AckFloor.Stream, info.NumAckPending)
		}
		return nil
	})
}

func TestStandingPullNeverDeliversMoreThanConcurrency(t *testing.T) {
	t.Parallel()
	t.Run("plain", func(t *testing.T) { t.Parallel(); testSlotBound(t, "") })
	// With idempotency, messages pass the duplicate lookup first, and are
	// acked once their records are stored: still never more in flight.
	t.Run("idempotent", func(t *testing.T) { t.Parallel(); testSlotBound(t, "processed") })
}

func testSlotBound(t *testing.T, bucket string) {
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{AckWait: time.Minute})
	const n, bound = 100, 8
	for i := range n {
		_, err := b.js.PublishAsync("jobs.resize", fmt.Appendf(nil, `{"n":%d}`, i), jetstream.WithMsgID(fmt.Sprintf("job-%d", i)))
		require.NoError(t, err)
	}
	<-b.js.PublishAsyncComplete()
	var started atomic.Int64
	release := make(chan struct{}, n)
	b.runner(t, Config{Concurrency: bound, ProcessedBucket: bucket, Handler: func(ctx context.Context, m jetstream.Msg) error {
		started.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	// With every handler blocked, the server counts as delivered and not
	// settled exactly the messages in handlers, never more than
	// Concurrency; slots are asked for once a quarter are free
	// (askFraction), so more than the rest are in use. The server may
	// serve a pull request before the acks sent ahead of it (it queues
	// each kind apart), so for a moment it may also count the acks just
	// sent, never more.
	released := int64(0)
	settled := func(acksSent int64) {
		t.Helper()
		natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			info := b.consumerInfo(t)
			require.LessOrEqual(t, started.Load()-released, int64(bound), "handled at once")
			require.LessOrEqual(t, int64(info.NumAckPending), bound+acksSent, "delivered and not settled")
			if busy := started.Load() - released; int64(info.NumAckPending) != busy || busy <= bound-bound/askFraction || info.NumWaiting != 0 {
				return fmt.Errorf("%d handlers blocked, ack pending %d, waiting requests %d", busy, info.NumAckPending, info.NumWaiting)
			}
			return nil
		})
		// And it stays so while they block.
		busy := started.Load() - released
		for range 5 {
			info := b.consumerInfo(t)
			require.Equal(t, busy, int64(info.NumAckPending))
			require.Equal(t, busy, started.Load()-released)
		}
	}
	settled(0)
	require.Equal(t, int64(bound), started.Load(), "the first pull asks for every slot")
	for _, k := range []int64{1, 4, 3, 8} {
		k = min(k, started.Load()-released)
		for range k {
			release <- struct{}{}
		}
		released += k
		settled(k)
	}
	close(release)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	require.Equal(t, int64(n), started.Load(), "each message handled once")
}

func TestServerRestartMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.Restartable(t))
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	b := &bundle{js: js, ctx: context.Background()}
	_, err = js.CreateStream(b.ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}})
	require.NoError(t, err)
	_, err = js.CreateOrUpdateConsumer(b.ctx, "JOBS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 2 * time.Second})
	require.NoError(t, err)
	const n = 300
	b.publish(t, n)

	type handling struct {
		delivered uint64
	}
	var mu sync.Mutex
	seen := map[string][]handling{}
	var handled atomic.Int64
	b.runner(t, Config{Concurrency: 8, Handler: func(ctx context.Context, m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		mu.Lock()
		seen[string(m.Data())] = append(seen[string(m.Data())], handling{meta.NumDelivered})
		mu.Unlock()
		handled.Add(1)
		time.Sleep(time.Millisecond) // the work
		return nil
	}})
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if handled.Load() < n/4 {
			return fmt.Errorf("%d handled", handled.Load())
		}
		return nil
	})
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	require.Less(t, handled.Load(), int64(n), "the server went down mid-run")
	natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.WithPort(port))

	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		c, err := js.Consumer(b.ctx, "JOBS", "worker")
		if err != nil {
			return err
		}
		info, err := c.Info(b.ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		distinct := len(seen)
		mu.Unlock()
		if distinct < n || info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("%d of %d handled, pending %d, ack pending %d", distinct, n, info.NumPending, info.NumAckPending)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, n, "every message was handled")
	for data, hs := range seen {
		for i, h := range hs[1:] {
			require.Greater(t, h.delivered, hs[i].delivered, "%s handled again only on a redelivery", data)
		}
	}
}

func TestOpenBreakerStopsPulls(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{MaxDeliver: -1})
	var fail atomic.Bool
	fail.Store(true)
	var calls atomic.Int64
	r := b.runner(t, Config{Concurrency: 4, Backoff: []time.Duration{10 * time.Millisecond},
		Breaker: &BreakerConfig{Name: "api", Failures: 1, OpenFor: 3 * time.Second, Heartbeat: time.Second},
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			calls.Add(1)
			if fail.Load() {
				return errors.New("api: connection refused")
			}
			return nil
		}})
	b.publish(t, 1)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if r.breaker.state() != gobreaker.StateOpen {
			return fmt.Errorf("breaker %s", r.breaker.state())
		}
		return nil
	})
	fail.Store(false)
	// The requests out when it opened end within a second, and no other is
	// sent while it is open.
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if w := b.consumerInfo(t).NumWaiting; w != 0 {
			return fmt.Errorf("%d pull requests waiting", w)
		}
		return nil
	})
	before := b.consumerInfo(t).Delivered.Consumer
	b.publish(t, 5)
	polls := 0
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if r.breaker.state() != gobreaker.StateOpen {
			return nil
		}
		info := b.consumerInfo(t)
		if r.breaker.state() != gobreaker.StateOpen {
			return nil // it half-opened during the look
		}
		polls++
		require.Equal(t, before, info.Delivered.Consumer, "nothing delivered while the breaker is open")
		require.Zero(t, info.NumWaiting, "no pull request while the breaker is open")
		return errors.New("breaker still open")
	})
	require.GreaterOrEqual(t, polls, 3, "looked while it was open")
	// Half open, a trickle goes through, it closes, and all are handled.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 || info.AckFloor.Stream != 6 {
			return fmt.Errorf("pending %d, ack pending %d, ack floor %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream)
		}
		return nil
	})
	require.Equal(t, gobreaker.StateClosed, r.breaker.state())
}

func TestPullResumesAfterTheConsumerIsDeletedAndMadeAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	var handled atomic.Int64
	b.runner(t, Config{Concurrency: 4, Handler: func(ctx context.Context, m jetstream.Msg) error {
		handled.Add(1)
		return nil
	}})
	waitHandled := func(want int64) {
		t.Helper()
		natstest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if got := handled.Load(); got != want {
				return fmt.Errorf("%d handled, want %d", got, want)
			}
			return nil
		})
	}
	b.publish(t, 3)
	waitHandled(3)
	// Its waiting pull requests are refused (409) or find nobody (503):
	// the runner gives them up and asks again after a pause.
	require.NoError(t, b.js.DeleteConsumer(b.ctx, "JOBS", "worker"))
	_, err := b.js.CreateOrUpdateConsumer(b.ctx, "JOBS", jetstream.ConsumerConfig{Durable: "worker",
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy})
	require.NoError(t, err)
	b.publish(t, 3)
	waitHandled(6)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 || info.AckFloor.Stream != 6 {
			return fmt.Errorf("pending %d, ack pending %d, ack floor %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream)
		}
		return nil
	})
}

func TestPullKeepsToTheConsumersRequestLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{MaxRequestBatch: 2, MaxRequestExpires: 500 * time.Millisecond})
	const n = 50
	b.publish(t, n)
	var inFlight, peak, handled atomic.Int64
	b.runner(t, Config{Concurrency: 8, Handler: func(ctx context.Context, m jetstream.Msg) error {
		now := inFlight.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // the work
		inFlight.Add(-1)
		handled.Add(1)
		return nil
	}})
	natstest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if handled.Load() < n || info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("handled %d, pending %d, ack pending %d", handled.Load(), info.NumPending, info.NumAckPending)
		}
		return nil
	})
	require.Equal(t, int64(n), handled.Load(), "each message handled once")
	require.Greater(t, peak.Load(), int64(2), "requests of two each overlapped")
}
