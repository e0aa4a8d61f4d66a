package streamreader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Backoff bounds of a follower restarting after failures in a row.
const (
	// DefaultBackoff is the wait after a first failure: a blip (a leader
	// election, a busy database) is over by then.
	DefaultBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the wait, so an index catches up within a
	// few seconds of NATS or the database coming back.
	DefaultMaxBackoff = 5 * time.Second
)

// FollowerConfig configures a Follower of a stream into an index that
// stores its position with its rows.
type FollowerConfig[T any] struct {
	// Stream is the stream followed. Required.
	Stream string
	// Batch is how many messages a batch holds at most. Defaults to 500.
	Batch int
	// Position loads the last sequence the index stored; reading starts
	// after it. It is called before each run, so a run after a failure
	// starts where the stored rows end, neither losing nor repeating one.
	// Required.
	Position func(ctx context.Context) (uint64, error)
	// Prepare turns a batch into what Handle stores, on the reading
	// goroutine (see RunPrepared). It may be nil when T is
	// []jetstream.Msg: Handle then gets the messages.
	Prepare func([]jetstream.Msg) (T, error)
	// Handle stores a batch (empty now and then while the stream is quiet)
	// with the position after it, and says whether to stop following.
	// An error restarts the run after a backoff. Required.
	Handle func(ctx context.Context, batch T) (stop bool, err error)
	// Failed, when set, hears every failure before the wait that follows
	// it, for a status the operator sees.
	Failed func(err error)
	// Backoff is the wait after a first failure; each next failure in a
	// row doubles it up to MaxBackoff, and a wait is drawn between half
	// and all of it, so replicas do not retry in step. Defaults to
	// DefaultBackoff (500 ms).
	Backoff time.Duration
	// MaxBackoff defaults to DefaultMaxBackoff (5 s).
	MaxBackoff time.Duration
	// What names the following in the operator's words, for the log:
	// "indexing the audit log". Defaults to "following stream <Stream>".
	What string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Follower follows a stream from a stored position for as long as it
// runs: it loads the position, reads from the message after it, hands
// each batch to the index, and after a failure waits (backing off while
// failures follow each other) and starts again from the position stored
// then. A failure is logged once per episode: a warning when following
// stops, the failures after it at debug level, and a line when a batch is
// stored again.
type Follower[T any] struct {
	js     jetstream.JetStream
	cfg    FollowerConfig[T]
	logger *slog.Logger
	// wait waits d or until ctx ends. Tests replace it to see the
	// backoff without waiting.
	wait func(ctx context.Context, d time.Duration)

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewFollower returns a follower of cfg.Stream on js.
func NewFollower[T any](js jetstream.JetStream, cfg FollowerConfig[T]) (*Follower[T], error) {
	if cfg.Stream == "" || cfg.Position == nil || cfg.Handle == nil {
		return nil, errors.New("stream follower: Stream, Position and Handle are required")
	}
	if cfg.Batch < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 {
		return nil, fmt.Errorf("stream follower of %s: Batch, Backoff and MaxBackoff must not be negative", cfg.Stream)
	}
	if cfg.Prepare == nil {
		identity, ok := any(func(b []jetstream.Msg) ([]jetstream.Msg, error) { return b, nil }).(func([]jetstream.Msg) (T, error))
		if !ok {
			return nil, fmt.Errorf("stream follower of %s: Prepare is required when batches are not []jetstream.Msg", cfg.Stream)
		}
		cfg.Prepare = identity
	}
	cfg.Batch = cmp.Or(cfg.Batch, 500)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = max(cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff), cfg.Backoff)
	cfg.What = cmp.Or(cfg.What, "following stream "+cfg.Stream)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &Follower[T]{js: js, cfg: cfg, logger: cfg.Logger.With("stream", cfg.Stream), wait: sleep}, nil
}

// Start follows the stream in the background until ctx ends, Handle says
// stop, or Stop. Call it once.
func (f *Follower[T]) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	f.stop, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		_ = f.Follow(ctx) // ends with ctx, or when Handle says stop
	}()
}

// Stop stops following after the batch in hand, and returns once it has.
// Safe to call twice, and without Start.
func (f *Follower[T]) Stop() {
	f.stopOnce.Do(func() {
		if f.stop != nil {
			f.stop()
			<-f.done
		}
	})
}

// Follow follows the stream until ctx ends or Handle says stop, starting
// again after each failure. It returns nil when Handle says stop, and
// ctx's error when ctx ends; every other failure is retried.
func (f *Follower[T]) Follow(ctx context.Context) error {
	var ep episode
	for {
		stopped, err := f.run(ctx, &ep)
		if err == nil && stopped {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			// A run ends without error only when Handle says stop or ctx
			// ends: this is not expected, but it must not spin.
			err = errors.New("reading ended")
		}
		ep.failures++
		if ep.failures == 1 {
			ep.since = time.Now()
		}
		wait := backoff(f.cfg.Backoff, f.cfg.MaxBackoff, ep.failures)
		if f.cfg.Failed != nil {
			f.cfg.Failed(err)
		}
		if ep.failures == 1 {
			f.logger.Warn(f.cfg.What+" stopped; restarting", "err", err, "retry_in", wait)
		} else {
			f.logger.Debug(f.cfg.What+" failed again; restarting", "err", err, "failures", ep.failures, "retry_in", wait)
		}
		f.wait(ctx, wait)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// episode is a run of failures with no batch stored between them.
type episode struct {
	failures int
	since    time.Time
}

// run reads once from the stored position, until Handle says stop,
// something fails or ctx ends. A batch stored ends the episode.
func (f *Follower[T]) run(ctx context.Context, ep *episode) (stopped bool, err error) {
	pos, err := f.cfg.Position(ctx)
	if err != nil {
		return false, err
	}
	err = RunPrepared(ctx, f.js, f.cfg.Stream, pos+1, f.cfg.Batch, f.cfg.Prepare, func(ctx context.Context, batch T) (bool, error) {
		stop, err := f.cfg.Handle(ctx, batch)
		if err != nil {
			return false, err
		}
		if ep.failures > 0 {
			f.logger.Info(f.cfg.What+" running again", "failures", ep.failures,
				"stopped_for", time.Since(ep.since).Round(time.Millisecond))
			*ep = episode{}
		}
		stopped = stop
		return stop, nil
	})
	return stopped, err
}

// backoff is the wait after failures in a row: base doubled for each
// failure after the first, capped at most, drawn between half and all of
// it (the alert sender's idiom).
func backoff(base, most time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < most; i++ {
		if d > most/2 { // doubling would pass most, or overflow
			d = most
		} else {
			d *= 2
		}
	}
	d = min(d, most)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
