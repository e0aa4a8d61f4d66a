package bulk

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

func TestBulkJobActsOnWhatItsPlanCounted(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	b.manyDeadLetters(t, 14)
	r := b.runner(t)

	req := Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Actor: "ann"}
	plan, err := r.Plan(b.ctx, req)
	require.NoError(t, err)
	require.Equal(t, 14, plan.Matched)
	require.Len(t, plan.Sample, Sample)
	require.Equal(t, plan.Sample[0].ID, plan.UpToID, "the newest that matches")
	require.Equal(t, store.StatusPending, plan.Filter.Status)

	// A dead letter arrives between the preview and the start.
	late := b.deadLetter(t, `{"late":true}`, false)
	require.Greater(t, late, plan.UpToID)

	req.UpToID = plan.UpToID
	job, err := r.Create(b.ctx, req)
	require.NoError(t, err)
	require.Equal(t, 14, job.Total)
	require.Equal(t, plan.UpToID, job.MaxID)
	// And another while it runs.
	later := b.deadLetter(t, `{"later":true}`, false)
	job = waitJobDone(t, r, job.ID, 20*time.Second)
	require.Equal(t, 14, job.Sent)
	require.Equal(t, uint64(14), b.ordersCount(t), "exactly the previewed dead letters")
	for _, id := range []uint64{late, later} {
		d, err := b.q.Get(b.ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.StatusPending, d.Status, "#%d arrived after the preview", id)
	}

	// An up_to_id past the newest dead letter bounds the job to those
	// that exist now, never to ones still to come.
	job, err = r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, UpToID: 1 << 40})
	require.NoError(t, err)
	require.Equal(t, later, job.MaxID)
	require.Equal(t, 2, job.Total)
	waitJobDone(t, r, job.ID, 20*time.Second)
	require.Equal(t, uint64(16), b.ordersCount(t))
}

func TestBulkJobOnAnEmptyDeskTakesNoLaterDeadLetter(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	r := b.runner(t)
	plan, err := r.Plan(b.ctx, Request{})
	require.NoError(t, err)
	require.Zero(t, plan.Matched)
	require.Zero(t, plan.UpToID)
	require.NotNil(t, plan.Sample)

	// Created by a jetwatch that stops before running it; a dead letter
	// arrives before another one resumes it.
	r.Stop()
	job, err := r.Create(b.ctx, Request{})
	require.NoError(t, err)
	require.Zero(t, job.Total)
	id := b.deadLetter(t, `{"a":1}`, false)
	next := b.runner(t)
	require.NoError(t, next.Start(b.ctx))
	job = waitJobDone(t, next, job.ID, 10*time.Second)
	require.Zero(t, job.Sent)
	d, err := b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, d.Status)
	require.Zero(t, b.ordersCount(t))
}

func TestBulkJobsListAsEveryReplicaSeesThem(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	b.manyDeadLetters(t, 3)
	one, two := b.runner(t), b.runner(t)

	jobs, err := two.List(b.ctx)
	require.NoError(t, err)
	require.Empty(t, jobs)

	first, err := one.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Actor: "ann"})
	require.NoError(t, err)
	waitJobDone(t, one, first.ID, 10*time.Second)
	jobs, err = one.List(b.ctx)
	require.NoError(t, err)
	require.Len(t, jobs, 1, "its own job lists at once")

	second, err := one.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "NONE"}, Actor: "bob"})
	require.NoError(t, err)
	// The other replica sees both, newest first, with their progress.
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		jobs, err := two.List(b.ctx)
		if err != nil {
			return err
		}
		if len(jobs) != 2 || jobs[1].State != JobDone {
			return fmt.Errorf("%d jobs: %+v", len(jobs), jobs)
		}
		return nil
	})
	jobs, err = two.List(b.ctx)
	require.NoError(t, err)
	require.Equal(t, []string{second.ID, first.ID}, []string{jobs[0].ID, jobs[1].ID})
	require.Equal(t, 3, jobs[1].Sent)
	require.Equal(t, "ann", jobs[1].Actor)

	// A value in the bucket that is no job is left out, not an error.
	_, err = one.kv.Put(b.ctx, "0123456789abcdef", []byte("not json"))
	require.NoError(t, err)
	third, err := one.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "NONE"}})
	require.NoError(t, err)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		jobs, err := two.List(b.ctx)
		if err != nil {
			return err
		}
		if len(jobs) != 3 || jobs[0].ID != third.ID {
			return fmt.Errorf("%d jobs", len(jobs))
		}
		return nil
	})
}

// TestBulkRedeliversInTheOrderTheyFailed: a job sends the oldest dead
// letter first, page after page, so messages of one key go back in the
// order they came (a created before its updated), however the list
// pages show them (newest first).
func TestBulkRedeliversInTheOrderTheyFailed(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	const n = 450 // more than a page of 200
	b.manyDeadLetters(t, n)
	r := b.runner(t)
	job, err := r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Actor: "ann"})
	require.NoError(t, err)
	job = waitJobDone(t, r, job.ID, 30*time.Second)
	require.Equal(t, n, job.Sent)
	orders, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	for seq := uint64(1); seq <= n; seq++ {
		m, err := orders.GetMsg(b.ctx, seq)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf(`{"n":%d}`, seq-1), string(m.Data), "ORDERS #%d", seq)
	}
}
