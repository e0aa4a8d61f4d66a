package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

type bundle struct {
	js  jetstream.JetStream
	ctx context.Context
}

func setup(t *testing.T, retention jetstream.RetentionPolicy, consumer jetstream.ConsumerConfig) *bundle {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Retention: retention})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}})
	require.NoError(t, err)
	consumer.Durable = "worker"
	consumer.AckPolicy = jetstream.AckExplicitPolicy
	_, err = js.CreateOrUpdateConsumer(ctx, "JOBS", consumer)
	require.NoError(t, err)
	return &bundle{js: js, ctx: ctx}
}

func (b *bundle) publish(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		_, err := b.js.PublishAsync("jobs.resize", fmt.Appendf(nil, `{"n":%d}`, i))
		require.NoError(t, err)
	}
	<-b.js.PublishAsyncComplete()
}

func (b *bundle) runner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	cfg.Stream, cfg.Consumer, cfg.Service = "JOBS", "worker", "resizer"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := New(b.ctx, b.js, cfg)
	require.NoError(t, err)
	require.NoError(t, r.Start(b.ctx))
	t.Cleanup(r.Stop)
	return r
}

func (b *bundle) consumerInfo(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.js.Consumer(b.ctx, "JOBS", "worker")
	require.NoError(t, err)
	info, err := c.Info(b.ctx)
	require.NoError(t, err)
	return info
}

func TestConcurrencyNeverExceedsTheBound(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	const n, bound = 1000, 8
	b.publish(t, n)
	var inFlight, peak, handled atomic.Int64
	b.runner(t, Config{Concurrency: bound, Handler: func(ctx context.Context, m jetstream.Msg) error {
		now := inFlight.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		time.Sleep(time.Millisecond) // the work
		inFlight.Add(-1)
		handled.Add(1)
		return nil
	}})
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if handled.Load() < n || info.NumAckPending > 0 || info.NumPending > 0 {
			return fmt.Errorf("handled %d, pending %d, ack pending %d", handled.Load(), info.NumPending, info.NumAckPending)
		}
		return nil
	})
	require.Equal(t, int64(n), handled.Load(), "each message handled once")
	require.LessOrEqual(t, peak.Load(), int64(bound))
	require.Greater(t, peak.Load(), int64(1), "handlers did run side by side")
}

func TestStopWithMessagesInFlightLosesNone(t *testing.T) {
	t.Parallel()
	t.Run("plain", func(t *testing.T) { t.Parallel(); testStopLosesNone(t, "") })
	// With idempotency, messages pass the duplicate lookup first.
	t.Run("idempotent", func(t *testing.T) { t.Parallel(); testStopLosesNone(t, "processed") })
}

func testStopLosesNone(t *testing.T, bucket string) {
	b := setup(t, jetstream.WorkQueuePolicy, jetstream.ConsumerConfig{AckWait: 30 * time.Second})
	for i := range 10 {
		_, err := b.js.Publish(b.ctx, "jobs.resize", fmt.Appendf(nil, `{"n":%d}`, i), jetstream.WithMsgID(fmt.Sprintf("job-%d", i)))
		require.NoError(t, err)
	}
	var started atomic.Int64
	release := make(chan struct{})
	first := b.runner(t, Config{Concurrency: 4, ShutdownTimeout: 100 * time.Millisecond, ProcessedBucket: bucket,
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			started.Add(1)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if started.Load() < 4 {
			return fmt.Errorf("%d handlers running", started.Load())
		}
		return nil
	})
	first.Stop() // the four in flight outlive the shutdown timeout: naked
	close(release)
	require.Equal(t, int64(4), started.Load(), "nothing fetched beyond the bound")

	var mu sync.Mutex
	seen := map[string]int{}
	b.runner(t, Config{Concurrency: 4, ProcessedBucket: bucket, Handler: func(ctx context.Context, m jetstream.Msg) error {
		mu.Lock()
		seen[string(m.Data())]++
		mu.Unlock()
		return nil
	}})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, err := b.js.Stream(b.ctx, "JOBS")
		if err != nil {
			return err
		}
		if msgs := s.CachedInfo().State.Msgs; msgs > 0 {
			return fmt.Errorf("%d still in the work queue", msgs)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 10, "every message was handled after the restart")
}

func dlqMessages(t *testing.T, b *bundle) []jetstream.RawStreamMsg {
	t.Helper()
	s, err := b.js.Stream(b.ctx, "DLQ")
	require.NoError(t, err)
	var out []jetstream.RawStreamMsg
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(b.ctx, seq)
		require.NoError(t, err)
		out = append(out, *m)
	}
	return out
}

func TestPermanentErrorDeadLettersWithThePayloadOnAWorkQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.WorkQueuePolicy, jetstream.ConsumerConfig{MaxDeliver: 5})
	b.publish(t, 1)
	var calls atomic.Int64
	b.runner(t, Config{Handler: func(ctx context.Context, m jetstream.Msg) error {
		calls.Add(1)
		return Permanent(errors.New("image format not supported"))
	}})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, err := b.js.Stream(b.ctx, "DLQ")
		if err != nil {
			return err
		}
		if s.CachedInfo().State.Msgs != 1 {
			return fmt.Errorf("no dead letter yet")
		}
		return nil
	})
	msgs := dlqMessages(t, b)
	require.Len(t, msgs, 1)
	require.Equal(t, "dlq.JOBS.worker", msgs[0].Subject)
	require.Equal(t, `{"n":0}`, string(msgs[0].Data), "the payload survives the Term")
	env := dlq.Decode(msgs[0].Subject, msgs[0].Header, time.Now())
	require.Empty(t, env.Problems)
	require.Equal(t, dlq.ReasonError, env.Reason)
	require.Equal(t, "image format not supported", env.Error)
	require.Equal(t, "resizer", env.Service)
	require.Equal(t, "jobs.resize", env.Subject)
	require.Equal(t, "JOBS:1:worker", msgs[0].Header.Get(jetstream.MsgIDHeader))
	require.Equal(t, int64(1), calls.Load(), "a permanent error is not retried")
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		s, err := b.js.Stream(b.ctx, "JOBS")
		if err != nil {
			return err
		}
		if s.CachedInfo().State.Msgs != 0 {
			return fmt.Errorf("the original is still in the work queue")
		}
		return nil
	})
}

func TestRetriesThenDeadLettersOnTheLastDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{MaxDeliver: 3})
	b.publish(t, 1)
	var calls atomic.Int64
	b.runner(t, Config{Backoff: []time.Duration{10 * time.Millisecond}, Handler: func(ctx context.Context, m jetstream.Msg) error {
		calls.Add(1)
		return errors.New("downstream timeout")
	}})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, err := b.js.Stream(b.ctx, "DLQ")
		if err != nil {
			return err
		}
		if s.CachedInfo().State.Msgs != 1 {
			return fmt.Errorf("no dead letter yet after %d calls", calls.Load())
		}
		return nil
	})
	require.Equal(t, int64(3), calls.Load(), "MaxDeliver deliveries, no more")
	env := dlq.Decode("dlq.JOBS.worker", dlqMessages(t, b)[0].Header, time.Now())
	require.Equal(t, dlq.ReasonMaxDeliver, env.Reason)
	require.Equal(t, uint64(3), env.Deliveries)
	require.Equal(t, "downstream timeout", env.Error)
}

func TestDuplicateMessageIDIsHandledOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	// A short duplicate window, so the same id can be stored twice, as it
	// is when a producer retries after the window.
	_, err := b.js.UpdateStream(b.ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Duplicates: 100 * time.Millisecond})
	require.NoError(t, err)
	_, err = b.js.Publish(b.ctx, "jobs.resize", []byte("one"), jetstream.WithMsgID("order-42"))
	require.NoError(t, err)
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		ack, err := b.js.Publish(b.ctx, "jobs.resize", []byte("two"), jetstream.WithMsgID("order-42"))
		if err != nil {
			return err
		}
		if ack.Duplicate {
			return fmt.Errorf("still inside the duplicate window")
		}
		return nil
	})
	var calls atomic.Int64
	b.runner(t, Config{Concurrency: 1, ProcessedBucket: "processed", Handler: func(ctx context.Context, m jetstream.Msg) error {
		calls.Add(1)
		return nil
	}})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	require.Equal(t, int64(1), calls.Load(), "the second message with the same id was acknowledged without handling")
}

func TestMetricsCountResults(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{MaxDeliver: 2})
	b.publish(t, 3)
	reg := prometheus.NewRegistry()
	var calls atomic.Int64
	b.runner(t, Config{Registerer: reg, Backoff: []time.Duration{10 * time.Millisecond}, Handler: func(ctx context.Context, m jetstream.Msg) error {
		if string(m.Data()) == `{"n":1}` {
			return errors.New("boom")
		}
		calls.Add(1)
		return nil
	}})
	count := func(result string) float64 {
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() != "jetwatch_service_messages_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == result {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if count("processed") != 2 || count("retried") != 1 || count("dead_lettered") != 1 {
			return fmt.Errorf("processed %v retried %v dead-lettered %v", count("processed"), count("retried"), count("dead_lettered"))
		}
		return nil
	})
	// A second runner on the same registry shares the metrics.
	_, err := New(b.ctx, b.js, Config{Stream: "JOBS", Consumer: "worker", Service: "resizer2", Registerer: reg,
		Handler: func(context.Context, jetstream.Msg) error { return nil }})
	require.NoError(t, err)
}
