package streamreader

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// memoryIndex stores the sequences it is given and its position together,
// all or nothing per batch, as the SQLite indexes do in a transaction.
type memoryIndex struct {
	mu        sync.Mutex
	seqs      []uint64
	pos       uint64
	positions int // calls of position: one per run
	failures  []error
	// fail, when set, refuses a batch holding seq, once each.
	fail map[uint64]bool
	// positionErrs fail that many calls of position first.
	positionErrs int
}

var errRefused = errors.New("refused")

func (x *memoryIndex) position(context.Context) (uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.positions++
	if x.positionErrs > 0 {
		x.positionErrs--
		return 0, errors.New("database locked")
	}
	return x.pos, nil
}

func (x *memoryIndex) handle(_ context.Context, batch []jetstream.Msg) (bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	seqs := make([]uint64, 0, len(batch))
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			return false, err
		}
		if x.fail[meta.Sequence.Stream] {
			delete(x.fail, meta.Sequence.Stream)
			return false, fmt.Errorf("batch with %d: %w", meta.Sequence.Stream, errRefused)
		}
		seqs = append(seqs, meta.Sequence.Stream)
	}
	x.seqs = append(x.seqs, seqs...)
	if len(seqs) > 0 {
		x.pos = seqs[len(seqs)-1]
	}
	return false, nil
}

func (x *memoryIndex) failed(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.failures = append(x.failures, err)
}

func (x *memoryIndex) snapshot() (seqs []uint64, pos uint64, positions, failures int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]uint64(nil), x.seqs...), x.pos, x.positions, len(x.failures)
}

// waitStored polls until the index's position reaches seq.
func (x *memoryIndex) waitStored(t *testing.T, seq uint64) {
	t.Helper()
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if _, pos, _, _ := x.snapshot(); pos < seq {
			return fmt.Errorf("stored up to %d, waiting for %d", pos, seq)
		}
		return nil
	})
}

// seqsFrom1 is 1..n.
func seqsFrom1(n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// consumerCount is how many consumers stream S has.
func consumerCount(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	s, err := js.Stream(context.Background(), "S")
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Consumers
}

// newFollower follows stream S into x, with waits of 1 ms unless cfg says
// otherwise, logging to logs when given.
func newFollower(t *testing.T, js jetstream.JetStream, x *memoryIndex, cfg FollowerConfig[[]jetstream.Msg], logs *bytes.Buffer) *Follower[[]jetstream.Msg] {
	t.Helper()
	cfg.Stream, cfg.Position, cfg.Handle, cfg.Failed = "S", x.position, x.handle, x.failed
	cfg.Batch = cmp.Or(cfg.Batch, 10)
	cfg.Backoff = cmp.Or(cfg.Backoff, time.Millisecond)
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil))
	}
	f, err := NewFollower(js, cfg)
	require.NoError(t, err)
	return f
}

func TestFollowerResumesFromTheStoredPositionAfterAHandlerError(t *testing.T) {
	t.Parallel()
	js := newStream(t, 50)
	x := &memoryIndex{fail: map[uint64]bool{25: true}}
	f := newFollower(t, js, x, FollowerConfig[[]jetstream.Msg]{}, nil)
	f.Start(context.Background())
	t.Cleanup(f.Stop)

	x.waitStored(t, 50)
	seqs, _, positions, failures := x.snapshot()
	require.Equal(t, seqsFrom1(50), seqs, "every message stored once, in order, across the restart")
	require.Equal(t, 1, failures)
	require.Equal(t, 2, positions, "the position is loaded again after the failure")
	f.Stop()
	require.Zero(t, consumerCount(t, js))
}

// The waits grow while failures follow each other and start over after a
// batch is stored; each episode is logged once.
func TestFollowerBacksOffWhileFailuresFollowEachOther(t *testing.T) {
	t.Parallel()
	js := newStream(t, 5)
	x := &memoryIndex{positionErrs: 6, fail: map[uint64]bool{6: true}}
	var logs bytes.Buffer
	f := newFollower(t, js, x, FollowerConfig[[]jetstream.Msg]{Backoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}, &logs)
	var mu sync.Mutex
	var waits []time.Duration
	f.wait = func(_ context.Context, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
	}
	f.Start(context.Background())
	t.Cleanup(f.Stop)

	x.waitStored(t, 5)
	_, _, positions, failures := x.snapshot()
	require.Equal(t, 6, failures)
	require.Equal(t, 7, positions, "one run per failure, and the one that read")
	// A second episode: one failure, and the wait is back to the first.
	_, err := js.Publish(context.Background(), "s.x", []byte("6"))
	require.NoError(t, err)
	x.waitStored(t, 6)
	f.Stop()

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, waits, 7)
	for i, limit := range []time.Duration{100, 200, 400, 400, 400, 400, 100} {
		limit *= time.Millisecond
		require.GreaterOrEqual(t, waits[i], limit/2, "wait %d", i)
		require.LessOrEqual(t, waits[i], limit, "wait %d", i)
	}
	out := logs.String()
	require.Equal(t, 2, strings.Count(out, "level=WARN"), out)
	require.Equal(t, 2, strings.Count(out, `msg="following stream S stopped; restarting"`), out)
	require.Equal(t, 5, strings.Count(out, "level=DEBUG"), out)
	require.Equal(t, 2, strings.Count(out, `msg="following stream S running again"`), out)
	require.Contains(t, out, "failures=6")
}

func TestBackoffStaysWithinItsBounds(t *testing.T) {
	t.Parallel()
	for failures := 1; failures < 80; failures++ {
		limit := min(time.Second<<min(failures-1, 10), 30*time.Second)
		for range 50 {
			d := backoff(time.Second, 30*time.Second, failures)
			require.GreaterOrEqual(t, d, limit/2)
			require.LessOrEqual(t, d, limit)
		}
	}
	// A wait never overflows into a negative or tiny one.
	require.GreaterOrEqual(t, backoff(time.Hour, 1<<62, 200), time.Duration(1<<61))
}

// Cancelling the context ends the follower, whether it is reading or
// waiting to restart, and leaves no consumer on the server.
func TestFollowerEndsWithItsContext(t *testing.T) {
	t.Parallel()
	js := newStream(t, 20)

	t.Run("reading", func(t *testing.T) {
		x := &memoryIndex{}
		f := newFollower(t, js, x, FollowerConfig[[]jetstream.Msg]{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Follow(ctx) }()
		x.waitStored(t, 20)
		require.Equal(t, 1, consumerCount(t, js), "reading through one consumer")
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Fatal("Follow did not return when its context ended")
		}
		require.Zero(t, consumerCount(t, js))
	})

	t.Run("waiting", func(t *testing.T) {
		x := &memoryIndex{positionErrs: 1 << 30}
		// Real waits: the first is at least half an hour.
		f := newFollower(t, js, x, FollowerConfig[[]jetstream.Msg]{Backoff: time.Hour}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		f.Start(ctx)
		natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if _, _, _, n := x.snapshot(); n != 1 {
				return fmt.Errorf("%d failures, waiting for 1", n)
			}
			return nil
		})
		cancel()
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the follower kept waiting after its context ended")
		}
		f.Stop()
		f.Stop() // twice is fine
		_, _, positions, _ := x.snapshot()
		require.Equal(t, 1, positions, "no run after the context ended")
		require.Zero(t, consumerCount(t, js))
	})

	t.Run("stopped", func(t *testing.T) {
		x := &memoryIndex{}
		f := newFollower(t, js, x, FollowerConfig[[]jetstream.Msg]{}, nil)
		f.Start(context.Background())
		x.waitStored(t, 20)
		f.Stop()
		require.Zero(t, consumerCount(t, js))
		var never Follower[int]
		never.Stop() // without Start is fine
	})
}

// A server restart mid-stream loses and repeats nothing: the follower
// goes on (its consumer recovers, or a new run starts from the stored
// position) once the server is back.
func TestFollowerSurvivesAServerRestart(t *testing.T) {
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

	x := &memoryIndex{}
	f := newFollower(t, js, x, FollowerConfig[[]jetstream.Msg]{Batch: 50}, nil)
	f.Start(ctx)
	t.Cleanup(f.Stop)
	x.waitStored(t, 150)
	srv.Shutdown()
	srv.WaitForShutdown()
	natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.WithPort(port))
	publish(301, 600)
	x.waitStored(t, 600)
	seqs, _, _, _ := x.snapshot()
	require.Equal(t, seqsFrom1(600), seqs, "in order, none lost or repeated")
	f.Stop()
	require.Zero(t, consumerCount(t, js))
}

func TestNewFollowerRefusesAnIncompleteConfig(t *testing.T) {
	t.Parallel()
	x := &memoryIndex{}
	for name, cfg := range map[string]FollowerConfig[[]jetstream.Msg]{
		"no stream":   {Position: x.position, Handle: x.handle},
		"no position": {Stream: "S", Handle: x.handle},
		"no handle":   {Stream: "S", Position: x.position},
		"negative":    {Stream: "S", Position: x.position, Handle: x.handle, Backoff: -time.Second},
	} {
		_, err := NewFollower(nil, cfg)
		require.Error(t, err, name)
	}
	_, err := NewFollower(nil, FollowerConfig[int]{Stream: "S", Position: x.position,
		Handle: func(context.Context, int) (bool, error) { return false, nil }})
	require.ErrorContains(t, err, "Prepare is required")
}

// lockedWriter lets the follower's goroutine and the test share a buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tWriter sends log lines to the test's log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
