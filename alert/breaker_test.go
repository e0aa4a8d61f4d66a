package alert_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/service"
	"github.com/jetwatch/jetwatch/store"
)

// transitionPath is a breaker's transitions so far, oldest first, as
// "to" states, without the first report.
func transitionPath(t *testing.T, db *store.DB) ([]store.BreakerTransition, []string) {
	t.Helper()
	trs, err := db.BreakerHistory(context.Background(), "notifier", "smtp", time.Time{}, 100)
	require.NoError(t, err)
	var path []string
	for _, tr := range trs {
		if tr.From != "unknown" {
			path = append(path, tr.To)
		}
	}
	return trs, path
}

// TestBreakerOutageWithProbesPagesOnce runs a real service whose
// downstream is down: its breaker opens, a half-open probe fails and opens
// it again, the next probe succeeds and it closes. The breakers bucket,
// the watcher, the evaluator, the outbox and the sender are all real. The
// outage is one episode: one firing notification, starting at the first
// open, and one resolution once the breaker stayed closed.
func TestBreakerOutageWithProbesPagesOnce(t *testing.T) {
	t.Parallel()
	// for is shorter than a probe cycle: were since reset by each probe
	// (as it was), every reopening would start the alert's for again.
	b := setup(t, `rules:
  - name: notifier-down
    kind: breaker_open
    service: notifier
    for: 100ms
    keep_firing_for: 1s
    receivers: [ops]
`)
	ctx := context.Background()
	w, err := collector.NewBreakerWatcher(b.js, b.db, collector.BreakerWatcherConfig{Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(w.Stop)

	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "MAIL", Subjects: []string{"mail.>"}})
	require.NoError(t, err)
	_, err = b.js.CreateOrUpdateConsumer(ctx, "MAIL", jetstream.ConsumerConfig{Durable: "sender", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for range 20 {
		_, err := b.js.Publish(ctx, "mail.send", []byte("hello"))
		require.NoError(t, err)
	}
	var down atomic.Bool
	down.Store(true)
	r, err := service.New(ctx, b.js, service.Config{Stream: "MAIL", Consumer: "sender", Service: "notifier", Concurrency: 1,
		Backoff: []time.Duration{10 * time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Breaker: &service.BreakerConfig{Name: "smtp", Failures: 2, OpenFor: 400 * time.Millisecond, Heartbeat: 100 * time.Millisecond},
		Handler: func(context.Context, jetstream.Msg) error {
			if down.Load() {
				return errors.New("smtp: 421 service not available")
			}
			return nil
		}})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(r.Stop)

	e, err := alert.NewEvaluator(b.js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return b.rules },
		Index: b.db, DeadLetters: query.New(b.db, nil, ""), Interval: 20 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(e.Stop)
	b.sender(t, b.db)

	// Down until a probe has failed: open, half-open, open.
	var firstOpen time.Time
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		trs, path := transitionPath(t, b.db)
		if len(path) < 3 {
			return fmt.Errorf("transitions so far: %v", path)
		}
		require.Equal(t, []string{store.BreakerOpen, store.BreakerHalfOpen, store.BreakerOpen}, path[:3])
		firstOpen = trs[1].At
		return nil
	})
	all, err := b.db.Breakers(ctx, time.Now())
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, firstOpen, all[0].Since, "since stays at the first open; the probe does not restart it")
	require.True(t, all[0].StateSince.After(firstOpen), "the state itself began at the probe")
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, alert.StatusFiring, got[0].Status)
	require.Equal(t, firstOpen, got[0].StartsAt.UTC(), "the alert starts at the outage's first open")

	// Up again: the next probe closes it, after another half-open.
	down.Store(false)
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		_, path := transitionPath(t, b.db)
		if n := len(path); n == 0 || path[n-1] != store.BreakerClosed {
			return fmt.Errorf("transitions so far: %v", path)
		}
		return nil
	})
	_, path := transitionPath(t, b.db)
	require.GreaterOrEqual(t, len(path), 5)
	require.Equal(t, []string{store.BreakerHalfOpen, store.BreakerClosed}, path[len(path)-2:])
	statuses, _ := e.Statuses()
	require.Len(t, statuses, 1)
	require.Equal(t, alert.StateFiring, statuses[0].State, "closed for less than keep_firing_for: still the same episode")

	got = waitNotifications(t, b.recv, 2)
	require.Equal(t, alert.StatusResolved, got[1].Status)
	require.Equal(t, got[0].Fingerprint, got[1].Fingerprint)
	require.Equal(t, got[0].StartsAt, got[1].StartsAt)
	trs, _ := transitionPath(t, b.db)
	closed := trs[len(trs)-1].At
	// The evaluation that first saw it closed may have begun a moment
	// before it closed: its time is when the alert ended.
	require.WithinRange(t, got[1].EndsAt.UTC(), closed.Add(-500*time.Millisecond), closed.Add(500*time.Millisecond),
		"it ended when the breaker closed, not keep_firing_for later")

	// Nothing more is queued or sent once it resolved.
	_, lastRun := e.Statuses()
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if _, at := e.Statuses(); !at.After(lastRun.Add(200 * time.Millisecond)) {
			return errors.New("the evaluator has not run on for 200ms yet")
		}
		return nil
	})
	e.Stop()
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		st, err := b.js.Stream(ctx, alert.DefaultOutboxStream)
		if err != nil {
			return err
		}
		if n := st.CachedInfo().State.Msgs; n > 0 {
			return fmt.Errorf("%d notifications still in the outbox", n)
		}
		return nil
	})
	got = notifications(t, b.recv)
	require.Len(t, got, 2, "one outage, one page and one resolution: %v", got)
	require.Equal(t, 2, b.recv.attempts(), "nothing else was attempted")
}

// TestBreakerAlertWaitsForTheBreakerToStayClosed follows one breaker
// through a closing that does not last: the alert keeps firing, sends
// nothing new, and resolves only once the breaker stayed closed for the
// default keep_firing_for (1 minute).
func TestBreakerAlertWaitsForTheBreakerToStayClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, "rules:\n  - {name: r, kind: breaker_open, service: notifier, for: 30s, receivers: [ops]}\n")
	b.clock.now = b.clock.now.Truncate(time.Millisecond) // as precise as the index
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	ctx := context.Background()
	report := func(state string) {
		now := b.clock.Now()
		_, err := b.db.SaveBreaker(ctx, store.Breaker{Service: "notifier", Breaker: "smtp", State: state, Since: now,
			UpdatedAt: now, HeartbeatSeconds: 3600, LastError: "connection refused"})
		require.NoError(t, err)
	}
	report(store.BreakerClosed)
	opened := b.clock.Now()
	report(store.BreakerOpen)
	b.evaluate(t, e)
	require.Equal(t, alert.StatePending, state(t, e, "r"))
	b.clock.Advance(20 * time.Second)
	report(store.BreakerHalfOpen)
	b.evaluate(t, e)
	require.Equal(t, alert.StatePending, state(t, e, "r"), "a probe neither clears it nor restarts for")
	b.clock.Advance(11 * time.Second)
	report(store.BreakerOpen)
	b.evaluate(t, e)
	require.Equal(t, alert.StateFiring, state(t, e, "r"), "open for 31s since the first open")
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, opened.UTC(), got[0].StartsAt.UTC())
	require.Contains(t, got[0].Summary, "down since "+opened.UTC().Format(time.RFC3339))

	b.clock.Advance(time.Second)
	report(store.BreakerClosed)
	b.evaluate(t, e)
	statuses, _ := e.Statuses()
	require.Equal(t, alert.StateFiring, statuses[0].State)
	require.Len(t, statuses[0].Instances, 1)
	in := statuses[0].Instances[0]
	require.Equal(t, b.clock.Now().UTC(), in.ClearedAt.UTC())
	require.Equal(t, b.clock.Now().Add(time.Minute).UTC(), in.ResolvesAt.UTC())
	require.Equal(t, opened.UTC(), in.Since.UTC())

	b.clock.Advance(50 * time.Second)
	report(store.BreakerOpen) // it opens again within the minute: the same episode
	b.evaluate(t, e)
	statuses, _ = e.Statuses()
	require.Equal(t, alert.StateFiring, statuses[0].State)
	require.True(t, statuses[0].Instances[0].ClearedAt.IsZero(), "the condition is back")

	b.clock.Advance(time.Second)
	report(store.BreakerClosed)
	b.evaluate(t, e)
	b.clock.Advance(59 * time.Second)
	b.evaluate(t, e)
	require.Equal(t, alert.StateFiring, state(t, e, "r"), "closed for 59s")
	b.clock.Advance(time.Second)
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "r"), "closed for a minute")

	got = waitNotifications(t, b.recv, 2)
	require.Equal(t, alert.StatusResolved, got[1].Status)
	require.Equal(t, opened.UTC(), got[1].StartsAt.UTC())
	require.Equal(t, b.clock.Now().Add(-time.Minute).UTC(), got[1].EndsAt.UTC(), "ended when it last closed")
	st, err := b.js.Stream(ctx, alert.DefaultOutboxStream)
	require.NoError(t, err)
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		info, err := st.Info(ctx)
		if err != nil || info.State.Msgs > 0 {
			return fmt.Errorf("outbox not drained: %v", err)
		}
		return nil
	})
	require.Len(t, notifications(t, b.recv), 2, "one firing, one resolution")
}
