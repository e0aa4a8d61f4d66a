package streamreader

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

func newStream(t *testing.T, n int) jetstream.JetStream {
	t.Helper()
	srv := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	require.NoError(t, err)
	for i := range n {
		_, err := js.PublishAsync("s.x", fmt.Appendf(nil, "%d", i+1))
		require.NoError(t, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("publishing timed out")
	}
	return js
}

func TestReadsInOrderInBoundedBatches(t *testing.T) {
	t.Parallel()
	js := newStream(t, 2500)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := uint64(7)
	err := Run(ctx, js, "S", 7, 100, func(ctx context.Context, batch []jetstream.Msg) (bool, error) {
		require.LessOrEqual(t, len(batch), 100)
		for _, m := range batch {
			meta, err := m.Metadata()
			require.NoError(t, err)
			require.Equal(t, next, meta.Sequence.Stream, "in order, none skipped or repeated")
			require.Equal(t, fmt.Sprint(next), string(m.Data()))
			next++
		}
		return next > 2500, nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 2501, next)
}

func TestQuietStreamSendsPartialThenEmptyBatches(t *testing.T) {
	t.Parallel()
	js := newStream(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got, empty int
	err := Run(ctx, js, "S", 1, 1000, func(ctx context.Context, batch []jetstream.Msg) (bool, error) {
		if len(batch) == 0 {
			empty++
		}
		got += len(batch)
		// The three messages come though the batch is never full, then
		// empty batches let the handler look around while nothing comes.
		return got == 3 && empty == 2, nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, got)
}

func TestPrepareErrorEndsTheRun(t *testing.T) {
	t.Parallel()
	js := newStream(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := errors.New("cannot prepare")
	err := RunPrepared(ctx, js, "S", 1, 5, func([]jetstream.Msg) (int, error) { return 0, bad },
		func(context.Context, int) (bool, error) { return false, nil })
	require.ErrorIs(t, err, bad)
	require.ErrorContains(t, err, "read stream S")
}

func TestServerRestartMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.Restartable(t))
	port := srv.Addr().(*net.TCPAddr).Port
	nc := natstest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	require.NoError(t, err)
	publish := func(from, to int) {
		for i := from; i <= to; i++ {
			// Retried while the client reconnects to the restarted server.
			natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
				_, err := js.Publish(ctx, "s.x", fmt.Appendf(nil, "%d", i))
				return err
			})
		}
	}
	publish(1, 300)

	next, runs, restarted := uint64(1), 0, false
	for next <= 600 {
		runs++
		// A run may end when the server goes away; like every caller, the
		// test starts the next one from where it got to.
		err := Run(ctx, js, "S", next, 50, func(ctx context.Context, batch []jetstream.Msg) (bool, error) {
			for _, m := range batch {
				meta, err := m.Metadata()
				require.NoError(t, err)
				require.Equal(t, next, meta.Sequence.Stream, "in order, none skipped or repeated")
				next++
			}
			if next > 150 && !restarted {
				restarted = true
				srv.Shutdown()
				srv.WaitForShutdown()
				srv = natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.WithPort(port))
				publish(301, 600)
			}
			return next > 600, nil
		})
		require.NoError(t, ctx.Err(), "reading stalled after the restart (%d runs, at %d)", runs, next)
		_ = err
	}
	require.EqualValues(t, 601, next)
}

func TestQueueHoldsAtMostTwoBatches(t *testing.T) {
	t.Parallel()
	q := newQueue(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 6 {
		q.push(ctx, nil)
	}
	pushed := make(chan struct{})
	go func() {
		q.push(ctx, nil)
		close(pushed)
	}()
	select {
	case <-pushed:
		t.Fatal("a seventh message was queued while six wait")
	case <-time.After(50 * time.Millisecond):
	}
	require.Len(t, q.take(), 3)
	select {
	case <-pushed:
	case <-ctx.Done():
		t.Fatal("taking a batch did not make room")
	}
	require.Len(t, q.take(), 3)
	require.Len(t, q.take(), 1)
	require.Empty(t, q.take())
}

// A reader leaves no consumer behind when it stops, whether it was asked
// to, its handler failed, or it is started again after an error.
func TestNoConsumerIsLeftBehind(t *testing.T) {
	t.Parallel()
	js := newStream(t, 10)
	ctx := context.Background()
	consumers := func() int {
		s, err := js.Stream(ctx, "S")
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		return info.State.Consumers
	}
	failing := errors.New("disk full")
	for range 3 { // a caller restarting a reader whose handler fails
		err := Run(ctx, js, "S", 1, 5, func(context.Context, []jetstream.Msg) (bool, error) {
			// While it reads, its consumer exists and gives up on its own.
			s, err := js.Stream(ctx, "S")
			require.NoError(t, err)
			for name := range s.ListConsumers(ctx).Info() {
				require.Equal(t, InactiveThreshold, name.Config.InactiveThreshold)
			}
			return false, failing
		})
		require.ErrorIs(t, err, failing)
	}
	require.Zero(t, consumers())

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, js, "S", 1, 5, func(context.Context, []jetstream.Msg) (bool, error) { return false, nil })
	}()
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if consumers() != 1 {
			return errors.New("not reading yet")
		}
		return nil
	})
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Zero(t, consumers())
}
