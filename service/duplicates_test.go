package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// publishTwice stores two messages with the same Nats-Msg-Id: the stream's
// duplicate window is made as short as the server allows, and the second
// publish is tried until it is no longer taken for a duplicate.
func publishTwice(t *testing.T, b *bundle, id string) {
	t.Helper()
	s, err := b.js.Stream(b.ctx, "JOBS")
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	_, err = b.js.UpdateStream(b.ctx, cfg)
	require.NoError(t, err)
	_, err = b.js.Publish(b.ctx, "jobs.resize", []byte("first"), jetstream.WithMsgID(id))
	require.NoError(t, err)
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		ack, err := b.js.Publish(b.ctx, "jobs.resize", []byte("second"), jetstream.WithMsgID(id))
		if err != nil {
			return err
		}
		if ack.Duplicate {
			return errors.New("still within the duplicate window")
		}
		return nil
	})
}

// waitingFor is how many duplicates wait for the claim on some id.
func waitingFor(r *Runner) int {
	n := 0
	for i := range r.claims {
		shard := &r.claims[i]
		shard.mu.Lock()
		for _, c := range shard.m {
			n += c.waiting
		}
		shard.mu.Unlock()
	}
	return n
}

func TestConcurrentDuplicatesRunTheHandlerOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	publishTwice(t, b, "order-1")
	var calls, running, peak atomic.Int64
	release := make(chan struct{})
	reg := prometheus.NewRegistry()
	r := b.runner(t, Config{Concurrency: 4, ProcessedBucket: "processed", Registerer: reg,
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			calls.Add(1)
			peak.Store(max(peak.Load(), running.Add(1)))
			defer running.Add(-1)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	// Both copies are delivered: one runs the handler, the other waits.
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if calls.Load() != 1 || waitingFor(r) != 1 {
			return fmt.Errorf("%d handler calls, %d duplicates waiting", calls.Load(), waitingFor(r))
		}
		return nil
	})
	require.Equal(t, 2, b.consumerInfo(t).NumAckPending, "neither is acked while the handler runs")
	close(release)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumAckPending != 0 || info.AckFloor.Stream != 2 {
			return fmt.Errorf("ack pending %d, ack floor %d", info.NumAckPending, info.AckFloor.Stream)
		}
		return nil
	})
	require.Equal(t, int64(1), calls.Load(), "the handler ran once for the two copies")
	require.Equal(t, int64(1), peak.Load())
	require.InDelta(t, 1, testutil.ToFloat64(r.metrics.results["processed"]), 0)
	require.InDelta(t, 1, testutil.ToFloat64(r.metrics.results["duplicate"]), 0)
	kv, err := b.js.KeyValue(b.ctx, "processed")
	require.NoError(t, err)
	keys, err := kv.ListKeys(b.ctx)
	require.NoError(t, err)
	var stored []string
	for k := range keys.Keys() {
		stored = append(stored, k)
	}
	require.Len(t, stored, 1, "the id is recorded once it is handled")
}

// TestDuplicateOfAFailedMessageIsHandledInItsPlace: when the delivery
// holding the id fails, the waiting duplicate runs the handler after it,
// never beside it.
func TestDuplicateOfAFailedMessageIsHandledInItsPlace(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	publishTwice(t, b, "order-2")
	var calls, running, peak atomic.Int64
	release := make(chan struct{})
	r := b.runner(t, Config{Concurrency: 4, ProcessedBucket: "processed", Backoff: []time.Duration{time.Minute},
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			n := calls.Add(1)
			peak.Store(max(peak.Load(), running.Add(1)))
			defer running.Add(-1)
			if n > 1 {
				return nil
			}
			select {
			case <-release:
				return errors.New("downstream refused")
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if calls.Load() != 1 || waitingFor(r) != 1 {
			return fmt.Errorf("%d handler calls, %d duplicates waiting", calls.Load(), waitingFor(r))
		}
		return nil
	})
	close(release)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := testutil.ToFloat64(r.metrics.results["processed"]); got != 1 {
			return fmt.Errorf("%v processed", got)
		}
		return nil
	})
	require.Equal(t, int64(2), calls.Load(), "the duplicate ran in place of the failed delivery")
	require.Equal(t, int64(1), peak.Load(), "never side by side")
	require.InDelta(t, 1, testutil.ToFloat64(r.metrics.results["retried"]), 0)
	require.InDelta(t, 0, testutil.ToFloat64(r.metrics.results["duplicate"]), 0)
}

// TestRecordedIDsInABurstAreAckedWithoutHandling: messages that arrive
// together are looked up together; those whose ids are recorded are acked
// as duplicates, the others handled, each once.
func TestRecordedIDsInABurstAreAckedWithoutHandling(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	const n = 40
	for i := range n {
		_, err := b.js.PublishAsync("jobs.resize", fmt.Appendf(nil, "%d", i), jetstream.WithMsgID(fmt.Sprintf("job-%d", i)))
		require.NoError(t, err)
	}
	<-b.js.PublishAsyncComplete()
	var mu sync.Mutex
	calls := map[string]int{}
	reg := prometheus.NewRegistry()
	r, err := New(b.ctx, b.js, Config{Stream: "JOBS", Consumer: "worker", Service: "resizer", Concurrency: 8,
		ProcessedBucket: "processed", Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			calls[string(m.Data())]++
			return nil
		}})
	require.NoError(t, err)
	// Every third id handled before, by another runner of the consumer.
	for i := 0; i < n; i += 3 {
		sum := sha256.Sum256(fmt.Appendf(nil, "job-%d", i))
		require.NoError(t, r.processed.record(b.ctx, r.keyPrefix+hex.EncodeToString(sum[:16]), []byte("1")))
	}
	require.NoError(t, r.Start(b.ctx))
	t.Cleanup(r.Stop)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		want := 1
		if i%3 == 0 {
			want = 0
		}
		require.Equal(t, want, calls[strconv.Itoa(i)], "message %d", i)
	}
	require.InDelta(t, n/3+1, testutil.ToFloat64(r.metrics.results["duplicate"]), 0)
	require.InDelta(t, n-(n/3+1), testutil.ToFloat64(r.metrics.results["processed"]), 0)
}
