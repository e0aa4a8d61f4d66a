package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBreakerSinceIsTheOutagesFirstOpen reports an outage whose probes
// fail (open, half-open, open, half-open, closed) as a service does: each
// report's since is when that state began. The outage keeps its first
// open as since; closing starts a new episode.
func TestBreakerSinceIsTheOutagesFirstOpen(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	report := func(state string, since time.Time) Breaker {
		t.Helper()
		_, err := db.SaveBreaker(ctx, Breaker{Service: "notifier", Breaker: "smtp", State: state, Since: since,
			UpdatedAt: since, HeartbeatSeconds: 10})
		require.NoError(t, err)
		all, err := db.Breakers(ctx, since)
		require.NoError(t, err)
		require.Len(t, all, 1)
		return all[0]
	}
	b := report(BreakerClosed, t0)
	require.Equal(t, t0, b.Since)
	b = report(BreakerClosed, t0.Add(time.Minute)) // a restarted service reports its own start
	require.Equal(t, t0, b.Since, "closed all along")
	require.Equal(t, t0.Add(time.Minute), b.StateSince)

	opened := t0.Add(2 * time.Minute)
	for i, step := range []struct {
		state string
		at    time.Duration
	}{{BreakerOpen, 0}, {BreakerHalfOpen, 15 * time.Second}, {BreakerOpen, 15*time.Second + time.Millisecond},
		{BreakerHalfOpen, 30 * time.Second}} {
		b = report(step.state, opened.Add(step.at))
		require.Equal(t, step.state, b.State, "step %d", i)
		require.Equal(t, opened, b.Since, "step %d: the outage began at its first open", i)
		require.Equal(t, opened.Add(step.at), b.StateSince, "step %d", i)
	}
	b = report(BreakerHalfOpen, opened.Add(30*time.Second)) // a heartbeat of the same state
	require.Equal(t, opened, b.Since)

	closed := opened.Add(45 * time.Second)
	b = report(BreakerClosed, closed)
	require.Equal(t, closed, b.Since, "closed since it closed")
	b = report(BreakerOpen, closed.Add(time.Second))
	require.Equal(t, closed.Add(time.Second), b.Since, "it closed: a new outage")

	trs, err := db.BreakerTransitions(ctx, "notifier", "smtp", 100)
	require.NoError(t, err)
	var path []string
	for i := len(trs) - 1; i >= 0; i-- {
		path = append(path, trs[i].From+">"+trs[i].To)
	}
	require.Equal(t, []string{"unknown>closed", "closed>open", "open>half-open", "half-open>open", "open>half-open",
		"half-open>closed", "closed>open"}, path, "heartbeats of a state are no transitions")
}

// TestBreakerHistoryStartsWithTheStateBeforeTheWindow reads a window of
// transitions: the last one before it says the state the window opens
// in, and older ones are not read.
func TestBreakerHistoryStartsWithTheStateBeforeTheWindow(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	states := []string{BreakerClosed, BreakerOpen, BreakerHalfOpen, BreakerClosed, BreakerOpen, BreakerClosed}
	for i, s := range states {
		for _, svc := range []string{"notifier", "other"} {
			_, err := db.SaveBreaker(ctx, Breaker{Service: svc, Breaker: "smtp", State: s, Since: t0.Add(time.Duration(i) * time.Minute),
				UpdatedAt: t0.Add(time.Duration(i) * time.Minute)})
			require.NoError(t, err)
		}
	}
	h, err := db.BreakerHistory(ctx, "notifier", "smtp", t0.Add(150*time.Second), 100)
	require.NoError(t, err)
	require.Len(t, h, 4)
	require.Equal(t, BreakerHalfOpen, h[0].To, "the state at the window's start")
	require.Equal(t, t0.Add(2*time.Minute), h[0].At)
	for i, want := range []string{BreakerClosed, BreakerOpen, BreakerClosed} {
		require.Equal(t, want, h[i+1].To)
		require.Equal(t, "notifier", h[i+1].Service)
		require.True(t, h[i+1].At.After(h[i].At), "oldest first")
	}

	h, err = db.BreakerHistory(ctx, "notifier", "smtp", t0.Add(-time.Hour), 2)
	require.NoError(t, err)
	require.Len(t, h, 2, "at most limit")
	require.Equal(t, t0.Add(5*time.Minute), h[1].At, "the latest ones")

	h, err = db.BreakerHistory(ctx, "nobody", "smtp", t0, 10)
	require.NoError(t, err)
	require.Empty(t, h)
}

// TestCompactExpiresBreakerTransitionsAndDeliveries: breaker transitions
// and alert deliveries are history: those older than the last tier go,
// and a breaker that flaps keeps only its newest MaxBreakerTransitions.
func TestCompactExpiresBreakerTransitionsAndDeliveries(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	r := Retention{Raw: time.Hour, FiveMinute: 24 * time.Hour, Hourly: 48 * time.Hour}
	old, recent := now.Add(-49*time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()

	tx, err := db.sql.Begin()
	require.NoError(t, err)
	ins, err := tx.Prepare(`INSERT INTO breaker_transitions (service, breaker, from_state, to_state, at) VALUES (?, ?, ?, ?, ?)`)
	require.NoError(t, err)
	for range 3 {
		_, err := ins.Exec("billing", "stripe", BreakerClosed, BreakerOpen, old)
		require.NoError(t, err)
	}
	_, err = ins.Exec("billing", "stripe", BreakerOpen, BreakerClosed, recent)
	require.NoError(t, err)
	for i := range MaxBreakerTransitions + 50 {
		_, err := ins.Exec("flappy", "api", BreakerOpen, BreakerHalfOpen, recent+int64(i))
		require.NoError(t, err)
	}
	require.NoError(t, ins.Close())
	require.NoError(t, tx.Commit())
	for i, at := range []int64{old, old, recent} {
		require.NoError(t, db.RecordAlertDelivery(ctx, AlertDelivery{ID: fmt.Sprint("n", i), Receiver: "pager", Rule: "lag",
			Status: "firing", Result: "delivered", Attempts: 1, CreatedAt: time.UnixMilli(at), UpdatedAt: time.UnixMilli(at)}))
	}

	res, err := db.Compact(ctx, now, r)
	require.NoError(t, err)
	require.Equal(t, int64(3+50+2), res.Records)
	kept, err := db.BreakerTransitions(ctx, "billing", "stripe", 100)
	require.NoError(t, err)
	require.Len(t, kept, 1)
	require.Equal(t, BreakerClosed, kept[0].To)
	require.Equal(t, MaxBreakerTransitions, countRows(t, db, `SELECT COUNT(*) FROM breaker_transitions WHERE service = 'flappy'`))
	require.Equal(t, recent+50, int64(countRows(t, db, `SELECT MIN(at) FROM breaker_transitions WHERE service = 'flappy'`)),
		"the newest are kept")
	deliveries, err := db.AlertDeliveries(ctx, 100)
	require.NoError(t, err)
	require.Len(t, deliveries, 1)
	require.Equal(t, "n2", deliveries[0].ID)

	res, err = db.Compact(ctx, now, r)
	require.NoError(t, err)
	require.Zero(t, res.Records)
}
