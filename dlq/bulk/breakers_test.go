package bulk

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// breakerRunner is a runner that heeds the index's breakers, looking
// again every 20 ms.
func (b *deskBundle) breakerRunner(t *testing.T) *Runner {
	t.Helper()
	r := NewRunner(b.js, b.q, b.r, Config{Lease: 3 * time.Second, SaveEvery: 20 * time.Millisecond,
		Breakers: b.db, BreakerPoll: 20 * time.Millisecond})
	t.Cleanup(r.Stop)
	require.NoError(t, r.Start(b.ctx))
	return r
}

// report stores a breaker report as the breaker watcher does.
func (b *deskBundle) report(t *testing.T, service, breaker, stream, consumer, state string, at time.Time) {
	t.Helper()
	_, err := b.db.SaveBreaker(b.ctx, store.Breaker{Service: service, Breaker: breaker, Stream: stream, Consumer: consumer,
		State: state, Since: at, Instance: service + "-1", HeartbeatSeconds: 60, UpdatedAt: at})
	require.NoError(t, err)
}

// waitHolding polls the job until it holds for why and has renewed its
// lease while holding at least saves times; it returns the job.
func waitHolding(t *testing.T, r *Runner, id, why string, saves int) Job {
	t.Helper()
	var job Job
	var first time.Time
	seen := 0
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		j, err := r.Get(context.Background(), id)
		if err != nil {
			return err
		}
		job = j
		if !strings.Contains(j.Waiting, why) {
			return fmt.Errorf("job %s, waiting %q", j.State, j.Waiting)
		}
		if first.IsZero() {
			first = j.UpdatedAt
		}
		if j.UpdatedAt.After(first) {
			seen++
			first = j.UpdatedAt
		}
		if seen < saves {
			return fmt.Errorf("held through %d saves", seen)
		}
		return nil
	})
	return job
}

func TestBulkRedeliveryHoldsWhileItsConsumersBreakerIsOpenAndSendsEachOnceAfter(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	const n = 60
	b.manyDeadLetters(t, n)
	now := time.Now()
	b.report(t, "notifier", "points-api", "ORDERS", "billing", store.BreakerOpen, now)
	// Neither of these guards billing: another consumer's, and one whose
	// service stopped reporting an hour ago (stale).
	b.report(t, "shipper", "carrier-api", "ORDERS", "shipping", store.BreakerOpen, now)
	b.report(t, "ghost", "old-api", "ORDERS", "billing", store.BreakerOpen, now.Add(-time.Hour))
	r := b.breakerRunner(t)

	job, err := r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Actor: "ann"})
	require.NoError(t, err)
	job = waitHolding(t, r, job.ID, "waiting: breaker billing/points-api open (service notifier, guarding consumer billing on ORDERS)", 3)
	require.Equal(t, JobRunning, job.State)
	require.False(t, job.WaitingSince.IsZero())
	require.Zero(t, b.ordersCount(t), "nothing is sent while the breaker is open")
	require.Zero(t, job.Sent)

	// Paused while holding, and resumed: it holds again, still sending nothing.
	job, err = r.Pause(b.ctx, job.ID)
	require.NoError(t, err)
	require.Empty(t, job.Waiting)
	_, err = r.Resume(b.ctx, job.ID)
	require.NoError(t, err)
	waitHolding(t, r, job.ID, "billing/points-api open", 2)
	require.Zero(t, b.ordersCount(t))

	// Half open is still down: a probe, not a recovery.
	b.report(t, "notifier", "points-api", "ORDERS", "billing", store.BreakerHalfOpen, time.Now())
	waitHolding(t, r, job.ID, "billing/points-api half-open", 2)
	require.Zero(t, b.ordersCount(t))

	b.report(t, "notifier", "points-api", "ORDERS", "billing", store.BreakerClosed, time.Now())
	job = waitJobDone(t, r, job.ID, 20*time.Second)
	require.Equal(t, uint64(n), b.ordersCount(t), "every dead letter redelivered exactly once")
	require.Equal(t, n, job.Sent)
	require.Zero(t, job.Failed)
	require.Empty(t, job.Waiting)
	require.True(t, job.WaitingSince.IsZero())
}

func TestBulkRedeliveryRunsAnywayWhenAnOperatorSaysSo(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	const n = 30
	b.manyDeadLetters(t, n)
	b.report(t, "notifier", "points-api", "ORDERS", "billing", store.BreakerOpen, time.Now())
	r := b.breakerRunner(t)

	job, err := r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Actor: "ann"})
	require.NoError(t, err)
	waitHolding(t, r, job.ID, "billing/points-api open", 2)
	require.Zero(t, b.ordersCount(t))
	job, err = r.IgnoreBreakers(b.ctx, job.ID)
	require.NoError(t, err)
	require.True(t, job.IgnoreBreakers)
	job = waitJobDone(t, r, job.ID, 20*time.Second)
	require.Equal(t, uint64(n), b.ordersCount(t), "sent once each, the breaker still open")
	require.Equal(t, n, job.Sent)
	require.Empty(t, job.Waiting)
	_, err = r.IgnoreBreakers(b.ctx, job.ID)
	require.ErrorIs(t, err, ErrJobFinished)

	// Chosen at creation, a job never holds; a discard never does either
	// (it sends nothing to the consumer).
	b.manyDeadLetters(t, n)
	job, err = r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, IgnoreBreakers: true})
	require.NoError(t, err)
	job = waitJobDone(t, r, job.ID, 20*time.Second)
	require.Equal(t, uint64(2*n), b.ordersCount(t))
	require.Empty(t, job.Waiting)
	b.manyDeadLetters(t, n)
	job, err = r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Action: dlq.ActionDiscard})
	require.NoError(t, err)
	job = waitJobDone(t, r, job.ID, 20*time.Second)
	require.Equal(t, n, job.Sent)
	require.Equal(t, uint64(2*n), b.ordersCount(t), "a discard sends nothing")
}

func TestBreakerHoldNamesTheBreakerOfTheChunksConsumers(t *testing.T) {
	t.Parallel()
	items := []store.DeadLetter{{Stream: "ORDERS", Consumer: "billing"}, {Stream: "PAYMENTS", Consumer: "ledger"}}
	for name, tc := range map[string]struct {
		breakers []store.Breaker
		want     string
	}{
		"none":   {nil, ""},
		"closed": {[]store.Breaker{{Service: "s", Breaker: "b", Stream: "ORDERS", Consumer: "billing", State: store.BreakerClosed}}, ""},
		"stale":  {[]store.Breaker{{Service: "s", Breaker: "b", Stream: "ORDERS", Consumer: "billing", State: store.BreakerOpen, Stale: true}}, ""},
		// Same consumer name on another stream is another consumer.
		"other stream": {[]store.Breaker{{Service: "s", Breaker: "b", Stream: "AUDIT", Consumer: "billing", State: store.BreakerOpen}}, ""},
		"no consumer":  {[]store.Breaker{{Service: "s", Breaker: "b", State: store.BreakerOpen}}, ""},
		"second item": {[]store.Breaker{{Service: "ledgerd", Breaker: "db", Stream: "PAYMENTS", Consumer: "ledger", State: store.BreakerHalfOpen}},
			"waiting: breaker ledger/db half-open (service ledgerd, guarding consumer ledger on PAYMENTS)"},
		"two": {[]store.Breaker{
			{Service: "n", Breaker: "points-api", Stream: "ORDERS", Consumer: "billing", State: store.BreakerOpen},
			{Service: "n", Breaker: "mail", Stream: "ORDERS", Consumer: "billing", State: store.BreakerOpen}},
			"waiting: breaker billing/points-api open (service n, guarding consumer billing on ORDERS); also mail"},
	} {
		require.Equal(t, tc.want, breakerHold(tc.breakers, items), name)
	}
}
