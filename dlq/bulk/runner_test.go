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

func (b *deskBundle) runner(t *testing.T) *Runner {
	t.Helper()
	r := NewRunner(b.js, b.q, b.r, Config{Lease: 300 * time.Millisecond, SaveEvery: 20 * time.Millisecond})
	t.Cleanup(r.Stop)
	require.NoError(t, r.Start(b.ctx))
	return r
}

// waitJobDone polls the job until it is done and returns it.
func waitJobDone(t *testing.T, r interface {
	Get(context.Context, string) (Job, error)
}, id string, timeout time.Duration) Job {
	t.Helper()
	var job Job
	natstest.CheckFor(t, timeout, 10*time.Millisecond, func() error {
		j, err := r.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if j.State != JobDone {
			return fmt.Errorf("job %s: %d/%d sent", j.State, j.Sent, j.Total)
		}
		job = j
		return nil
	})
	return job
}

func TestBulkJobKilledPartWayResumesAndSendsEachOnce(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	const n = 200
	b.manyDeadLetters(t, n)

	first := b.runner(t)
	plan, err := first.Plan(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}})
	require.NoError(t, err)
	require.Equal(t, n, plan.Matched)
	require.Len(t, plan.Sample, Sample)
	require.Zero(t, b.ordersCount(t), "a dry run sends nothing")

	job, err := first.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, RatePerSec: 500, Actor: "ann"})
	require.NoError(t, err)
	require.Equal(t, n, job.Total)
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if c := b.ordersCount(t); c < n/4 {
			return fmt.Errorf("%d sent so far", c)
		}
		return nil
	})
	// jetwatch dies: the runner stops where it is, the job still says running.
	first.Stop()
	stopped := b.ordersCount(t)
	require.Less(t, stopped, uint64(n))
	job, err = first.Get(b.ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, JobRunning, job.State)

	// A new jetwatch picks it up once the dead one's lease lapses.
	second := b.runner(t)
	require.NoError(t, second.Start(b.ctx))
	job = waitJobDone(t, second, job.ID, 20*time.Second)
	require.Equal(t, uint64(n), b.ordersCount(t), "every dead letter redelivered exactly once")
	require.Equal(t, n, job.Sent)
	require.Zero(t, job.Failed)
	pending, err := b.q.Count(b.ctx, store.DeadLetterFilter{Status: store.StatusPending})
	require.NoError(t, err)
	require.Zero(t, pending)
}

func TestBulkJobPauseResumeCancelAndValidation(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	b.manyDeadLetters(t, 50)
	r := b.runner(t)

	_, err := r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Status: store.StatusRedelivered}})
	require.ErrorIs(t, err, store.ErrBadFilter)
	_, err = r.Create(b.ctx, Request{Action: "explode"})
	require.ErrorIs(t, err, store.ErrBadFilter)
	_, err = r.Get(b.ctx, "nope")
	require.ErrorIs(t, err, ErrJobNotFound)
	// An id no job can have never reaches NATS: one past the server's
	// control line limit would cost the connection.
	for _, id := range []string{strings.Repeat("a", 5000), "0123456789abcdeg", "../../x", ""} {
		_, err = r.Pause(b.ctx, id)
		require.ErrorIs(t, err, ErrJobNotFound)
	}
	require.True(t, b.js.Conn().IsConnected())
	_, err = r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{IDs: []uint64{1 << 63}}})
	require.ErrorIs(t, err, store.ErrBadFilter)

	job, err := r.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, RatePerSec: 20, Action: dlq.ActionDiscard, Actor: "ann"})
	require.NoError(t, err)
	job, err = r.Pause(b.ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, JobPaused, job.State)
	job, err = r.Resume(b.ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, JobRunning, job.State)
	job, err = r.Cancel(b.ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, JobCancelled, job.State)
	_, err = r.Resume(b.ctx, job.ID)
	require.ErrorIs(t, err, ErrJobFinished)
	require.Zero(t, b.ordersCount(t), "discard sends nothing")

	jobs, err := r.List(b.ctx)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
}
