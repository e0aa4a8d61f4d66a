package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/ensure"
)

// DefaultSignOutBucket is the KV bucket sign-outs are shared through.
const DefaultSignOutBucket = "jetwatch_sessions_revoked"

const (
	defaultSignOutRetry = 2 * time.Second
	maxSignOutRetry     = 30 * time.Second
	// shareTimeout bounds how long a sign-out waits for NATS before it
	// answers anyway (the session has ended here by then).
	shareTimeout = 2 * time.Second
)

// SignOutsConfig configures SignOuts.
type SignOutsConfig struct {
	// Bucket is the KV bucket. Defaults to DefaultSignOutBucket.
	Bucket string
	// Replicas is the bucket's replica count (--stream-replicas).
	// Defaults to 1.
	Replicas int
	// Retry is how long to wait before sending again sign-outs NATS did
	// not take, and before opening the bucket again (doubling up to 30
	// seconds while that fails). Defaults to 2 seconds.
	Retry time.Duration
	// Logger receives the bucket's trouble. Defaults to slog.Default().
	Logger *slog.Logger
}

// SignOuts shares sign-outs through a KV bucket, so that every jetwatch
// replica, and this one after a restart, refuses a session signed out
// anywhere. A sign-out is a key, the session id, whose value is the
// session's expiry; the bucket's TTL is the session TTL, so each key
// outlives its session and then goes by itself. A watch keeps every
// replica's copy in memory, so checking a cookie costs no round trip.
//
// While NATS is unreachable:
//   - a sign-out ends the session on this replica at once, and is sent to
//     the bucket as soon as NATS takes it (Sessions.Revoke says so);
//   - a replica that has read the bucket keeps checking against the
//     sign-outs it knows. Failing closed instead would sign every operator
//     out while NATS is down, which is when they most need the dashboard;
//     what stays open is only a session signed out on another replica
//     during the outage, until it expires or NATS is back.
//   - a replica that has not read the bucket since it started (NATS down
//     at start) knows no sign-outs at all, so it accepts only sessions it
//     started itself; older cookies must sign in again, which works
//     without NATS. A restart therefore never revives a signed-out
//     session.
type SignOuts struct {
	js       jetstream.JetStream
	sessions *Sessions
	cfg      SignOutsConfig
	logger   *slog.Logger

	kv       atomic.Pointer[jetstream.KeyValue]
	read     chan struct{}
	readOnce sync.Once
	kick     chan struct{}

	mu      sync.Mutex
	pending map[string]time.Time // sign-outs NATS has not taken yet
	failing bool                 // the last flush failed (logged once)
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// NewSignOuts shares sessions' sign-outs through js once started.
func NewSignOuts(js jetstream.JetStream, sessions *Sessions, cfg SignOutsConfig) (*SignOuts, error) {
	if js == nil || sessions == nil {
		return nil, errors.New("auth: sign-outs need JetStream and the sessions")
	}
	if cfg.Retry < 0 || cfg.Replicas < 0 {
		return nil, errors.New("auth: sign-outs: Retry and Replicas must not be negative")
	}
	cfg.Bucket = cmp.Or(cfg.Bucket, DefaultSignOutBucket)
	cfg.Replicas = max(cfg.Replicas, 1)
	cfg.Retry = cmp.Or(cfg.Retry, defaultSignOutRetry)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &SignOuts{js: js, sessions: sessions, cfg: cfg, logger: cfg.Logger.With("component", "sign-outs", "bucket", cfg.Bucket),
		read: make(chan struct{}), kick: make(chan struct{}, 1), pending: map[string]time.Time{}}, nil
}

// Start attaches the sign-outs to the sessions and keeps them shared in
// the background until ctx ends or Stop; it returns at once, NATS or not.
func (so *SignOuts) Start(ctx context.Context) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.done != nil || so.stopped {
		return errors.New("auth: sign-outs already started or stopped")
	}
	if !so.sessions.share(so) {
		return errors.New("auth: these sessions already share their sign-outs")
	}
	ctx, so.cancel = context.WithCancel(ctx)
	so.done = make(chan struct{})
	go so.run(ctx)
	return nil
}

// Stop stops sharing. Sign-outs not sent yet stay unsent. Safe to call
// twice, and before Start.
func (so *SignOuts) Stop() {
	so.mu.Lock()
	cancel, done := so.cancel, so.done
	so.stopped = true
	so.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Read is closed once every sign-out in the bucket has been read.
func (so *SignOuts) Read() <-chan struct{} { return so.read }

func (so *SignOuts) run(ctx context.Context) {
	defer close(so.done)
	wait := so.cfg.Retry
	for {
		err := so.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errReconnected) {
			so.logger.Debug("NATS reconnected: watching the sign-outs again")
			wait = so.cfg.Retry
			continue
		}
		select {
		case <-so.read:
			so.logger.Warn("sign-outs are not being shared (this replica keeps refusing those it knows, and sends its own when NATS answers)",
				"err", err, "retry_in", wait)
		default:
			so.logger.Error("sign-outs cannot be read: sessions started before this jetwatch must sign in again until NATS answers",
				"err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxSignOutRetry)
	}
}

// follow opens the bucket and applies its sign-outs until the watch ends.
func (so *SignOuts) follow(ctx context.Context) error {
	kv, err := ensure.KeyValue(ctx, so.js, jetstream.KeyValueConfig{Bucket: so.cfg.Bucket,
		Description: "jetwatch sign-outs: ids of sessions that must be refused until they expire",
		History:     1, TTL: so.sessions.ttl, Replicas: so.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("open KV bucket %s for sign-outs (needs permission on $JS.API.STREAM.*.KV_%s and $KV.%s.>): %w",
			so.cfg.Bucket, so.cfg.Bucket, so.cfg.Bucket, err)
	}
	so.kv.Store(&kv)
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch KV bucket %s: %w", so.cfg.Bucket, err)
	}
	defer w.Stop() //nolint:errcheck // nothing to do about it
	reconnects := so.reconnects()
	tick := time.NewTicker(so.cfg.Retry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch of the sign-out bucket ended")
			}
			if e == nil { // every sign-out in the bucket is in
				so.sessions.markRead()
				so.readOnce.Do(func() { close(so.read) })
				so.flush(ctx, kv)
				continue
			}
			so.apply(e)
		case <-tick.C:
			if so.reconnects() != reconnects {
				// The server may have lost the watch's consumer (a
				// restart); waiting for the watch to notice takes
				// its missed heartbeats, so watch again at once.
				return errReconnected
			}
			so.flush(ctx, kv)
		case <-so.kick:
			so.flush(ctx, kv)
		}
	}
}

// errReconnected ends a watch that may have lost its consumer.
var errReconnected = errors.New("NATS reconnected")

func (so *SignOuts) reconnects() uint64 {
	if nc := so.js.Conn(); nc != nil {
		return nc.Stats().Reconnects
	}
	return 0
}

// apply records a sign-out read from the bucket. Deletes are ignored: a
// sign-out is never undone, keys only leave with the bucket's TTL.
func (so *SignOuts) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	exp, err := time.Parse(time.RFC3339, string(e.Value()))
	if err != nil {
		// Not one jetwatch wrote; refuse the session all the same for
		// as long as any session could last.
		exp = e.Created().Add(so.sessions.ttl)
	}
	so.sessions.remember(e.Key(), exp)
}

// share puts one sign-out into the bucket, or keeps it to send later.
func (so *SignOuts) share(ctx context.Context, id string, expires time.Time) error {
	kvp := so.kv.Load()
	if kvp == nil {
		so.keep(id, expires)
		return fmt.Errorf("%w: the sign-out bucket is not open (NATS has not answered since jetwatch started)", ErrSignOutNotShared)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shareTimeout)
	defer cancel()
	if _, err := (*kvp).Put(ctx, id, []byte(expires.UTC().Format(time.RFC3339))); err != nil {
		so.keep(id, expires)
		return fmt.Errorf("%w: %w", ErrSignOutNotShared, err)
	}
	return nil
}

// keep remembers a sign-out to send when NATS answers. The list only
// grows by sign-outs made while NATS is unreachable.
func (so *SignOuts) keep(id string, expires time.Time) {
	so.mu.Lock()
	so.pending[id] = expires
	so.mu.Unlock()
	select {
	case so.kick <- struct{}{}:
	default:
	}
}

// flush sends the sign-outs kept while NATS did not answer, stopping at
// the first failure (NATS is still away).
func (so *SignOuts) flush(ctx context.Context, kv jetstream.KeyValue) {
	so.mu.Lock()
	todo := make(map[string]time.Time, len(so.pending))
	for id, exp := range so.pending {
		todo[id] = exp
	}
	so.mu.Unlock()
	sent := 0
	for id, exp := range todo {
		pctx, cancel := context.WithTimeout(ctx, shareTimeout)
		_, err := kv.Put(pctx, id, []byte(exp.UTC().Format(time.RFC3339)))
		cancel()
		so.mu.Lock()
		first := err != nil && !so.failing
		so.failing = err != nil
		if err == nil && so.pending[id].Equal(exp) {
			delete(so.pending, id)
		}
		so.mu.Unlock()
		if err != nil {
			if first {
				so.logger.Warn("sign-outs made while NATS was unreachable are not shared with other replicas yet; retrying",
					"waiting", len(todo)-sent, "err", err)
			}
			return
		}
		sent++
	}
	if sent > 0 {
		so.logger.Info("sign-outs made while NATS was unreachable are now shared with every replica", "count", sent)
	}
}
