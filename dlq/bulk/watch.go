package bulk

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// jobWatch holds every bulk job of the bucket in memory, as one watcher
// of the bucket sees them (every replica's jobs and their progress), so
// that listing jobs creates no consumer and reads nothing: a consumer per
// listing would add two JetStream API calls and their advisories to every
// refresh of the dead-letters page.
type jobWatch struct {
	mu      sync.Mutex
	jobs    map[string]watchedJob
	started bool
	ready   chan struct{} // closed once the watcher has sent every job
}

type watchedJob struct {
	job Job
	rev uint64
}

// note keeps job at revision rev unless a newer one is known. The runner
// notes its own writes too, so a job it just created lists at once.
func (w *jobWatch) note(job Job, rev uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jobs == nil {
		w.jobs = map[string]watchedJob{}
	}
	if old, ok := w.jobs[job.ID]; ok && old.rev >= rev {
		return
	}
	w.jobs[job.ID] = watchedJob{job, rev}
}

func (w *jobWatch) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.jobs, id)
}

// list is every job, newest first.
func (w *jobWatch) list() []Job {
	w.mu.Lock()
	jobs := make([]Job, 0, len(w.jobs))
	for _, j := range w.jobs {
		jobs = append(jobs, j.job)
	}
	w.mu.Unlock()
	slices.SortFunc(jobs, func(a, b Job) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return jobs
}

// watchJobs starts watching the jobs bucket, once, and waits until the
// watcher has sent every stored job. A failed start is tried again on the
// next call.
func (b *Runner) watchJobs(ctx context.Context) error {
	w := &b.jobs
	w.mu.Lock()
	if !w.started {
		kv, err := b.bucket()
		if err != nil {
			w.mu.Unlock()
			return err
		}
		watcher, err := kv.WatchAll(b.ctx)
		if err != nil {
			w.mu.Unlock()
			return fmt.Errorf("watch bulk jobs: %w", err)
		}
		w.started, w.ready = true, make(chan struct{})
		b.wg.Go(func() { b.followJobs(watcher, w.ready) })
	}
	ready := w.ready
	w.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("watch bulk jobs: %w", ctx.Err())
	case <-b.ctx.Done():
		return ErrUnavailable
	}
}

// followJobs applies the watcher's entries until the runner stops.
func (b *Runner) followJobs(watcher jetstream.KeyWatcher, ready chan struct{}) {
	defer watcher.Stop() //nolint:errcheck // stopping anyway
	var once sync.Once
	for {
		select {
		case <-b.ctx.Done():
			return
		case e, ok := <-watcher.Updates():
			switch {
			case !ok:
				return
			case e == nil: // every stored job has been sent
				once.Do(func() { close(ready) })
			case e.Operation() != jetstream.KeyValuePut:
				b.jobs.forget(e.Key())
			default:
				var job Job
				if err := json.Unmarshal(e.Value(), &job); err != nil || job.ID != e.Key() {
					b.logger.Warn("a malformed bulk job in the jobs bucket is not listed", "key", e.Key(), "err", err)
					continue
				}
				b.jobs.note(job, e.Revision())
			}
		}
	}
}
