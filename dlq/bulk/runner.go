package bulk

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/ensure"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// Bulk job states.
const (
	JobRunning   = "running"
	JobPaused    = "paused"
	JobDone      = "done"
	JobCancelled = "cancelled"
	JobFailed    = "failed"
)

// ErrJobNotFound is returned for an unknown bulk job id.
var ErrJobNotFound = errors.New("no such bulk job")

// ErrUnavailable is returned while bulk jobs cannot run (NATS not
// reachable yet).
var ErrUnavailable = errors.New("bulk jobs are not available yet: jetwatch's streams are not reachable (see the log)")

// ErrJobFinished is returned when pausing or resuming a finished job.
var ErrJobFinished = errors.New("the bulk job has finished")

// Request asks for a bulk redelivery or discard of every dead letter
// matching a filter.
type Request struct {
	Filter     store.DeadLetterFilter
	Action     string // redeliver (default) or discard
	RatePerSec float64
	Actor      string
	// UpToID bounds the job to the dead letters up to this id: a plan's
	// UpToID, so the job acts on the set its dry run counted and not on
	// dead letters that arrived since. 0 bounds it to those that exist
	// when the job is created.
	UpToID uint64
	// IgnoreBreakers runs the job whatever the breakers of the consumers
	// its dead letters go back to say (see Job.Waiting).
	IgnoreBreakers bool
}

// Plan is a bulk job's dry run: how many pending dead letters it
// would act on, the newest of them, and the id it would stop at.
type Plan struct {
	// Filter is the filter as the job applies it (pending only).
	Filter  store.DeadLetterFilter `json:"filter"`
	Matched int                    `json:"matched"`
	// Sample is the newest Sample of the matching dead letters.
	Sample []store.DeadLetter `json:"sample"`
	// UpToID is the newest matching dead letter's id, 0 when none
	// matches. A job created with it acts on these dead letters only:
	// new ones that arrive later are not included.
	UpToID uint64 `json:"up_to_id"`
}

// Sample is how many dead letters a plan shows.
const Sample = 10

// Job is a bulk action's definition and progress, kept in a KV bucket,
// so it survives a restart of jetwatch, SIGKILL included.
type Job struct {
	ID         string                 `json:"id"`
	Filter     store.DeadLetterFilter `json:"filter"`
	Action     string                 `json:"action"`
	RatePerSec float64                `json:"rate_per_sec"`
	MaxID      uint64                 `json:"max_id"`
	State      string                 `json:"state"`
	Total      int                    `json:"total"`
	Sent       int                    `json:"sent"`
	Failed     int                    `json:"failed"`
	Skipped    int                    `json:"skipped"`
	LastError  string                 `json:"last_error,omitempty"`
	Actor      string                 `json:"actor"`
	CreatedAt  time.Time              `json:"created_at"`
	UpdatedAt  time.Time              `json:"updated_at"`
	// Owner and LeaseUntil let one jetwatch replica run the job at a time.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Waiting says why a running redelivery holds, "" while it does not:
	// a breaker of a consumer its next dead letters go back to is open or
	// half open ("waiting: breaker notifier/points-api open ..."). It
	// goes on by itself once the breaker closes.
	Waiting string `json:"waiting,omitempty"`
	// WaitingSince is when it began to hold.
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	// IgnoreBreakers is set when an operator chose to run it whatever the
	// breakers say: at creation, or while it waits.
	IgnoreBreakers bool `json:"ignore_breakers,omitempty"`
	// Account is the runner's Config.Account when the job was created:
	// the --account whose dead letters it acts on, "" for jetwatch's own.
	Account string `json:"account,omitempty"`

	// unknown and unknownFilter are the fields a newer jetwatch wrote
	// that this one does not know, kept as read (see job_json.go).
	unknown, unknownFilter map[string]json.RawMessage
}

// Breakers are the circuit breakers services report. *store.DB
// implements it: Stale is judged at now.
type Breakers interface {
	Breakers(ctx context.Context, now time.Time) ([]store.Breaker, error)
}

// Config configures a Runner.
type Config struct {
	// Bucket keeps the jobs. Defaults to jetwatch_bulk_jobs.
	Bucket string
	// Replicas of the bucket. Defaults to 1.
	Replicas int
	// Lease is how long a replica owns a running job without renewing.
	// Defaults to 15 seconds.
	Lease time.Duration
	// SaveEvery is how often progress is saved. Defaults to 1 second.
	SaveEvery time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider traces each chunk of a job as a span, with a span per
	// dead letter under it. Defaults to no tracing.
	TracerProvider trace.TracerProvider
	// Now is the clock of leases and progress saves. Defaults to time.Now.
	Now func() time.Time
	// Breakers, when set, makes redeliveries breaker-aware: before each
	// chunk, a job holds while a breaker (open or half open, not stale)
	// guards a consumer the chunk's dead letters go back to. Defaults to
	// none: jobs never hold.
	Breakers Breakers
	// BreakerPoll is how often a holding job reads the breakers again
	// (and renews its lease), and how long a running job trusts the
	// breakers it read. Defaults to 2 seconds.
	BreakerPoll time.Duration
	// Account names the account whose dead letters q and r reach, on
	// each job it creates, so its pages and links carry it. Defaults to
	// "": jetwatch's own account.
	Account string
}

// Runner runs bulk jobs. Progress never decides what is sent: each
// pass takes the dead letters still pending that match the job's filter
// (up to the newest one when the job was created), and every send carries
// the dead letter's redelivery message id, so a job resumed after a crash
// sends nothing twice.
type Runner struct {
	js     jetstream.JetStream
	q      *query.Queries
	r      *redeliver.Redeliverer
	cfg    Config
	logger *slog.Logger
	tracer trace.Tracer
	self   string

	jobs jobWatch

	mu      sync.Mutex
	kv      jetstream.KeyValue // set by Start
	running map[string]context.CancelFunc
	// again names the jobs launched while a pass of theirs was still
	// ending (paused and at once resumed): each runs again once it has.
	again map[string]bool
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

// NewRunner returns a runner that asks NATS nothing until Start:
// before Start succeeds, its methods that need the jobs bucket answer
// ErrUnavailable.
func NewRunner(js jetstream.JetStream, q *query.Queries, r *redeliver.Redeliverer, cfg Config) *Runner {
	cfg.Bucket = cmp.Or(cfg.Bucket, "jetwatch_bulk_jobs")
	cfg.Replicas = max(cfg.Replicas, 1)
	cfg.Lease = cmp.Or(cfg.Lease, 15*time.Second)
	cfg.SaveEvery = cmp.Or(cfg.SaveEvery, time.Second)
	// A holding job renews its lease at each look: well within it.
	cfg.BreakerPoll = min(cmp.Or(cfg.BreakerPoll, 2*time.Second), cfg.Lease/3)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	runCtx, stop := context.WithCancel(context.Background())
	return &Runner{js: js, q: q, r: r, cfg: cfg, logger: cfg.Logger.With("component", "bulk"),
		self: randomID(), running: map[string]context.CancelFunc{}, again: map[string]bool{}, ctx: runCtx, stop: stop,
		tracer: tracecontext.Tracer(cfg.TracerProvider, tracerName)}
}

// bucket is the jobs bucket, once Start opened it.
func (b *Runner) bucket() (jetstream.KeyValue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.kv == nil {
		return nil, ErrUnavailable
	}
	return b.kv, nil
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	return hex.EncodeToString(b[:])
}

// isJobID says whether id has the shape randomID gives: anything else is
// no job, and never becomes a key in a request to NATS (a long one would
// pass the server's control line limit and cost the connection).
func isJobID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (req Request) check() (Request, error) {
	req.Action = cmp.Or(req.Action, dlq.ActionRedeliver)
	if req.Action != dlq.ActionRedeliver && req.Action != dlq.ActionDiscard {
		return req, fmt.Errorf("%w: action %q: use redeliver or discard", store.ErrBadFilter, req.Action)
	}
	if req.RatePerSec < 0 || math.IsNaN(req.RatePerSec) || math.IsInf(req.RatePerSec, 0) {
		return req, fmt.Errorf("%w: rate_per_sec must be 0 (unthrottled) or more", store.ErrBadFilter)
	}
	// Only pending dead letters are acted on; a status filter other than
	// pending would select nothing to do.
	if req.Filter.Status != "" && req.Filter.Status != store.StatusPending {
		return req, fmt.Errorf("%w: a bulk job acts on pending dead letters only", store.ErrBadFilter)
	}
	req.Filter.Status = store.StatusPending
	return req, req.Filter.Validate()
}

// Plan is the dry run: how many dead letters a job would act on, a sample
// of them, and the newest one's id, which bounds the job (see UpToID).
func (b *Runner) Plan(ctx context.Context, req Request) (Plan, error) {
	req, err := req.check()
	if err != nil {
		return Plan{}, err
	}
	page, err := b.q.List(ctx, req.Filter, Sample, "")
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Filter: req.Filter, Sample: page.Items}
	if len(page.Items) == 0 {
		return p, nil
	}
	// Counted up to the newest in the sample: one that arrives meanwhile
	// is in neither.
	p.UpToID = page.Items[0].ID
	f := req.Filter
	f.MaxID = p.UpToID
	p.Matched, err = b.q.Count(ctx, f)
	return p, err
}

// Create stores a job and starts it. The job acts on the pending dead
// letters matching its filter up to req.UpToID (or the newest dead letter
// when 0): those that arrive later are never included.
func (b *Runner) Create(ctx context.Context, req Request) (Job, error) {
	req, err := req.check()
	if err != nil {
		return Job{}, err
	}
	maxID, err := b.q.MaxID(ctx)
	if err != nil {
		return Job{}, err
	}
	if req.UpToID > 0 {
		maxID = min(maxID, req.UpToID)
	}
	req.Filter.MaxID = maxID
	total := 0
	if maxID > 0 { // else there is nothing, and MaxID 0 would bound nothing
		if total, err = b.q.Count(ctx, req.Filter); err != nil {
			return Job{}, err
		}
	}
	now := b.cfg.Now().UTC()
	job := Job{ID: randomID(), Filter: req.Filter, Action: req.Action, RatePerSec: req.RatePerSec, MaxID: maxID,
		State: JobRunning, Total: total, Actor: req.Actor, CreatedAt: now, UpdatedAt: now, IgnoreBreakers: req.IgnoreBreakers,
		Account: b.cfg.Account}
	data, _ := json.Marshal(job)
	kv, err := b.bucket()
	if err != nil {
		return Job{}, err
	}
	rev, err := kv.Create(ctx, job.ID, data)
	if err != nil {
		return Job{}, fmt.Errorf("store bulk job: %w", err)
	}
	b.jobs.note(job, rev)
	b.launch(job.ID)
	return job, nil
}

// Get returns a job.
func (b *Runner) Get(ctx context.Context, id string) (Job, error) {
	job, _, err := b.load(ctx, id)
	return job, err
}

// List returns every job, newest first, as the runner's watch of the
// jobs bucket last saw them: listing asks NATS nothing once the watch has
// started (the dead-letters page lists on every refresh).
func (b *Runner) List(ctx context.Context) ([]Job, error) {
	if err := b.watchJobs(ctx); err != nil {
		return nil, err
	}
	return b.jobs.list(), nil
}

func (b *Runner) load(ctx context.Context, id string) (Job, uint64, error) {
	if !isJobID(id) {
		// From a URL: it names no job, and must not reach the connection.
		return Job{}, 0, ErrJobNotFound
	}
	kv, err := b.bucket()
	if err != nil {
		return Job{}, 0, err
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Job{}, 0, ErrJobNotFound
	}
	if err != nil {
		return Job{}, 0, fmt.Errorf("load bulk job %s: %w", id, err)
	}
	var job Job
	if err := json.Unmarshal(e.Value(), &job); err != nil {
		return Job{}, 0, fmt.Errorf("bulk job %s is corrupt: %w", id, err)
	}
	return job, e.Revision(), nil
}

// change applies fn to the stored job with optimistic concurrency.
func (b *Runner) change(ctx context.Context, id string, fn func(*Job) error) (Job, error) {
	for range 10 {
		job, rev, err := b.load(ctx, id)
		if err != nil {
			return job, err
		}
		if err := fn(&job); err != nil {
			return job, err
		}
		job.UpdatedAt = b.cfg.Now().UTC()
		data, _ := json.Marshal(job)
		kv, err := b.bucket()
		if err != nil {
			return job, err
		}
		if rev, err := kv.Update(ctx, id, data, rev); err == nil {
			b.jobs.note(job, rev)
			return job, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				return job, fmt.Errorf("save bulk job %s: %w", id, err)
			}
		}
	}
	return Job{}, fmt.Errorf("save bulk job %s: too many concurrent changes", id)
}

// Pause stops a running job after the dead letter in hand.
func (b *Runner) Pause(ctx context.Context, id string) (Job, error) {
	job, err := b.change(ctx, id, func(j *Job) error {
		if j.State != JobRunning && j.State != JobPaused {
			return ErrJobFinished
		}
		j.State, j.Owner, j.LeaseUntil = JobPaused, "", time.Time{}
		j.Waiting, j.WaitingSince = "", time.Time{}
		return nil
	})
	if err == nil {
		b.halt(id)
	}
	return job, err
}

// Resume restarts a paused job.
func (b *Runner) Resume(ctx context.Context, id string) (Job, error) {
	job, err := b.change(ctx, id, func(j *Job) error {
		if j.State != JobRunning && j.State != JobPaused {
			return ErrJobFinished
		}
		j.State = JobRunning
		return nil
	})
	if err == nil {
		b.launch(id)
	}
	return job, err
}

// IgnoreBreakers lets an unfinished job run whatever the breakers say:
// one that waits for a breaker goes on at its next look (within
// BreakerPoll), on whichever replica runs it.
func (b *Runner) IgnoreBreakers(ctx context.Context, id string) (Job, error) {
	return b.change(ctx, id, func(j *Job) error {
		if j.State != JobRunning && j.State != JobPaused {
			return ErrJobFinished
		}
		j.IgnoreBreakers = true
		return nil
	})
}

// Cancel ends a job; what was sent stays sent.
func (b *Runner) Cancel(ctx context.Context, id string) (Job, error) {
	job, err := b.change(ctx, id, func(j *Job) error {
		if j.State == JobDone || j.State == JobCancelled || j.State == JobFailed {
			return ErrJobFinished
		}
		j.State, j.Owner, j.LeaseUntil = JobCancelled, "", time.Time{}
		j.Waiting, j.WaitingSince = "", time.Time{}
		return nil
	})
	if err == nil {
		b.halt(id)
	}
	return job, err
}

// Start creates the jobs bucket if missing and resumes the jobs that were
// running when jetwatch stopped. A failed Start may be tried again.
func (b *Runner) Start(ctx context.Context) error {
	if _, err := b.bucket(); err != nil {
		// Never lowers what an operator raised (its replicas).
		kv, err := ensure.KeyValue(ctx, b.js, jetstream.KeyValueConfig{Bucket: b.cfg.Bucket,
			Description: "jetwatch bulk redelivery jobs", Replicas: b.cfg.Replicas})
		if err != nil {
			return fmt.Errorf("bulk jobs bucket %s (allow $JS.API.STREAM.CREATE.KV_%s): %w", b.cfg.Bucket, b.cfg.Bucket, err)
		}
		b.mu.Lock()
		b.kv = kv
		b.mu.Unlock()
	}
	jobs, err := b.List(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.State == JobRunning {
			b.launch(j.ID)
		}
	}
	return nil
}

// Stop stops every job this process runs, leaving them running in the
// bucket for the next start (or another replica) to resume.
func (b *Runner) Stop() {
	b.stop()
	b.wg.Wait()
}

func (b *Runner) launch(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil {
		return
	}
	if _, ok := b.running[id]; ok {
		// A pass that was halted (a pause) may still be ending: a resume
		// would find it and start nothing, and the job would sit running
		// with nobody running it. It is launched again once that pass has
		// ended; a pass that is not ending finds the job its own.
		b.again[id] = true
		return
	}
	ctx, cancel := context.WithCancel(b.ctx)
	b.running[id] = cancel
	b.wg.Go(func() {
		defer func() {
			b.mu.Lock()
			delete(b.running, id)
			again := b.again[id]
			delete(b.again, id)
			b.mu.Unlock()
			cancel()
			if again {
				b.launch(id)
			}
		}()
		if err := b.run(ctx, id); err != nil && ctx.Err() == nil {
			b.logger.Error("bulk job stopped", "job", id, "err", err)
			b.change(context.Background(), id, func(j *Job) error { //nolint:errcheck // best effort, logged above
				j.State, j.LastError = JobFailed, err.Error()
				return nil
			})
		}
	})
}

func (b *Runner) halt(id string) {
	b.mu.Lock()
	cancel, ok := b.running[id]
	b.mu.Unlock()
	if ok {
		cancel()
	}
}

// errLeased says another replica holds the job's lease.
type errLeased struct{ until time.Time }

func (e errLeased) Error() string {
	return "runs on another jetwatch until " + e.until.Format(time.RFC3339)
}

// errNewer says a job carries fields this jetwatch does not know.
type errNewer struct{ fields []string }

func (e errNewer) Error() string {
	return "written by a newer jetwatch (fields " + strings.Join(e.fields, ", ") + ")"
}

// run takes the job's lease, waiting while another replica holds it (a
// replica that died lets its lease lapse), and works through the job's
// pending dead letters.
func (b *Runner) run(ctx context.Context, id string) error {
	job, ok, err := b.lease(ctx, id)
	if err != nil || !ok {
		return err
	}
	if job.MaxID == 0 {
		// No dead letter existed when it was created: MaxID 0 bounds
		// nothing, and new ones are not the job's.
		return b.finish(ctx, id)
	}
	p, err := b.newPass(ctx, job)
	if err != nil {
		return err
	}
	return p.run(ctx)
}

// lease takes the job's lease for this runner, waiting while another
// replica holds it; false when the job is no longer running or ctx ended.
func (b *Runner) lease(ctx context.Context, id string) (Job, bool, error) {
	for {
		job, err := b.change(ctx, id, func(j *Job) error {
			if j.State != JobRunning {
				return ErrJobFinished
			}
			if newer := j.newerFields(); len(newer) > 0 {
				return errNewer{newer}
			}
			if j.Owner != "" && j.Owner != b.self && b.cfg.Now().Before(j.LeaseUntil) {
				return errLeased{j.LeaseUntil}
			}
			j.Owner, j.LeaseUntil = b.self, b.cfg.Now().Add(b.cfg.Lease)
			return nil
		})
		var leased errLeased
		var newer errNewer
		switch {
		case errors.Is(err, ErrJobFinished):
			return job, false, nil
		case errors.As(err, &newer):
			// Left running in the bucket, for a replica that knows them.
			b.logger.Warn("bulk job left to a newer jetwatch: it has fields this one does not know, and acting on part of its filter could act on more than was previewed",
				"job", id, "fields", newer.fields)
			return job, false, nil
		case errors.As(err, &leased):
			select {
			case <-ctx.Done():
				return job, false, nil
			case <-time.After(leased.until.Sub(b.cfg.Now()) + 10*time.Millisecond):
			}
		case err != nil:
			return job, false, err
		default:
			return job, true, nil
		}
	}
}

// pass is one runner's way through a job's pending dead letters, from
// where the job stands, in chunks.
type pass struct {
	b      *Runner
	job    Job
	filter store.DeadLetterFilter // the job's, bounded by its MaxID
	// Dead letters go in chunks (their reads, sends and records travel
	// together): a page at a time, and a throttled job's chunks are a
	// tenth of a second's worth, so the rate holds over any second.
	chunk   int
	limiter *rate.Limiter
	actor   string
	note    string

	sent, failed, skipped int
	lastErr               string
	lastSave              time.Time

	// What the job holds for, saved with the progress; ignoreBreakers is
	// read back from the stored job at each save (an operator's
	// override).
	waiting        string
	waitingSince   time.Time
	ignoreBreakers bool
	// breakers are those last read, at breakersAt.
	breakers   []store.Breaker
	breakersAt time.Time
}

// newPass starts a pass where the job stands: what is left is what is
// still pending, so progress so far is derived, never trusted from the
// last save.
func (b *Runner) newPass(ctx context.Context, job Job) (*pass, error) {
	f := job.Filter
	f.MaxID = job.MaxID
	// In the order they failed: messages of one key go back in the order
	// they came (a created before its updated).
	f.OldestFirst = true
	remaining, err := b.q.Count(ctx, f)
	if err != nil {
		return nil, err
	}
	p := &pass{b: b, job: job, filter: f, chunk: 200, note: "bulk job " + job.ID, lastSave: b.cfg.Now(),
		sent: max(job.Total-remaining-job.Skipped, job.Sent), skipped: job.Skipped,
		waiting: job.Waiting, waitingSince: job.WaitingSince, ignoreBreakers: job.IgnoreBreakers}
	p.limiter = rate.NewLimiter(rate.Inf, p.chunk)
	if job.RatePerSec > 0 {
		p.chunk = max(1, min(p.chunk, int(job.RatePerSec/10)))
		p.limiter = rate.NewLimiter(rate.Limit(job.RatePerSec), p.chunk)
	}
	p.actor = job.Actor + " (" + p.note + ")"
	if job.Action == dlq.ActionDiscard {
		p.actor = job.Actor
	}
	return p, nil
}

// run works through the pending dead letters page by page, saving
// progress every SaveEvery, and marks the job done at the end. Paused,
// cancelled or stopping, it returns nil.
func (p *pass) run(ctx context.Context) error {
	cursor := ""
	for {
		page, err := p.b.q.List(ctx, p.filter, 200, cursor)
		if err != nil {
			return err
		}
		for items := range slices.Chunk(page.Items, p.chunk) {
			if err := p.limiter.WaitN(ctx, len(items)); err != nil {
				return nil // paused, cancelled or stopping
			}
			if stop, err := p.holdForBreakers(ctx, items); stop || err != nil {
				return err
			}
			if stop := p.act(ctx, items); stop {
				return nil
			}
			if p.b.cfg.Now().Sub(p.lastSave) < p.b.cfg.SaveEvery {
				continue
			}
			if err := p.save(ctx, ""); err != nil {
				if errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
			p.lastSave = p.b.cfg.Now()
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if err := p.save(ctx, JobDone); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// act acts on one chunk and counts how it went; true when the runner is
// stopping and some of the chunk's outcomes are not known.
func (p *pass) act(ctx context.Context, items []store.DeadLetter) (stop bool) {
	ids := make([]uint64, len(items))
	for i, d := range items {
		ids[i] = d.ID
	}
	cctx, span := p.b.startChunk(ctx, p.job, len(ids))
	sent, failed := 0, 0
	for i, err := range p.b.r.ActMany(cctx, p.job.Action, ids, p.actor, p.note, p.job.ID) {
		switch {
		case err == nil,
			// Settled meanwhile, or sent just before a crash: the send
			// was deduplicated.
			errors.Is(err, redeliver.ErrAlreadyRedelivered), errors.Is(err, redeliver.ErrAlreadyDiscarded):
			sent++
		default:
			failed++
			p.lastErr = fmt.Sprintf("#%d: %v", ids[i], err)
		}
	}
	endChunk(span, sent, failed)
	if ctx.Err() != nil && failed > 0 {
		return true
	}
	p.sent += sent
	p.failed += failed
	return false
}

// save stores the progress and renews the lease; with final, it ends the
// job in that state. context.Canceled says the job was paused or
// cancelled meanwhile.
func (p *pass) save(ctx context.Context, final string) error {
	_, err := p.b.change(context.WithoutCancel(ctx), p.job.ID, func(j *Job) error {
		if j.State != JobRunning {
			return ErrJobFinished // paused or cancelled meanwhile
		}
		j.Sent, j.Failed, j.Skipped, j.LastError = p.sent, p.failed, p.skipped, p.lastErr
		j.Waiting, j.WaitingSince = p.waiting, p.waitingSince
		p.ignoreBreakers = j.IgnoreBreakers
		j.LeaseUntil = p.b.cfg.Now().Add(p.b.cfg.Lease)
		if final != "" {
			j.State, j.Owner, j.LeaseUntil = final, "", time.Time{}
			j.Waiting, j.WaitingSince = "", time.Time{}
		}
		return nil
	})
	if errors.Is(err, ErrJobFinished) {
		return context.Canceled
	}
	return err
}

// finish marks a job that has nothing to do as done.
func (b *Runner) finish(ctx context.Context, id string) error {
	_, err := b.change(context.WithoutCancel(ctx), id, func(j *Job) error {
		if j.State != JobRunning {
			return ErrJobFinished
		}
		j.State, j.Owner, j.LeaseUntil = JobDone, "", time.Time{}
		return nil
	})
	if errors.Is(err, ErrJobFinished) {
		return nil
	}
	return err
}
