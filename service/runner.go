package service

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/internal/directget"
	"github.com/jetwatch/jetwatch/internal/ensure"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
)

// Handler handles one message. Returning nil acknowledges it; returning an
// error retries it later, up to the consumer's MaxDeliver; returning a
// Permanent error dead-letters it at once.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// permanentError marks an error no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the runner dead-letters the message at once
// instead of retrying it.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent says whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Config configures a Runner.
type Config struct {
	// Stream and Consumer name an existing pull consumer. Required.
	Stream, Consumer string
	// Handler handles each message. Required.
	Handler Handler
	// Service names this service in dead letters. Required.
	Service string
	// Concurrency is how many messages are handled at once, and so how
	// many are fetched: never more are in flight. A message is in flight
	// from the pull request that asks for it until its ack (or nak) is
	// sent: the runner keeps one subscription for its pull requests, which
	// overlap, each asking only for slots no message holds, so messages
	// waiting for a worker never pile up; a pull request's slots are held
	// while it waits (at most a second) and given back when it ends. Acks
	// are not waited for, so the server may count a few more than
	// Concurrency acks pending for a moment. Defaults to 4.
	Concurrency int
	// Backoff is the delay before each retry: the first failure waits
	// Backoff[0], the second Backoff[1], and the last entry repeats.
	// Defaults to 1s, 5s, 30s.
	Backoff []time.Duration
	// HeartbeatEvery sends InProgress while a handler runs, so a handler
	// slower than AckWait is not redelivered under it. Defaults to half the
	// consumer's AckWait.
	HeartbeatEvery time.Duration
	// ShutdownTimeout is how long Stop lets running handlers finish before
	// their messages are naked for redelivery. Defaults to 10 seconds.
	ShutdownTimeout time.Duration
	// ProcessedBucket, when set, makes handling idempotent: the
	// Nats-Msg-Id of each message handled successfully is kept in this KV
	// bucket (created if missing) for ProcessedTTL, and a message whose id
	// is there is acknowledged without calling the handler. Defaults to off.
	ProcessedBucket string
	// ProcessedTTL is how long a handled id is remembered. Defaults to 24
	// hours.
	ProcessedTTL time.Duration
	// Breaker, when set, puts a circuit breaker around the handler: while
	// it is open the runner fetches nothing, so no delivery is wasted; half
	// open, it lets a trickle through. Its state is reported to the
	// jetwatch_breakers KV bucket for the dashboard. Defaults to none.
	Breaker *BreakerConfig
	// Downstreams are breakers the handler uses around calls to named
	// downstreams (NewBreaker, Breaker.Do). While any is open the runner
	// fetches nothing; while one is half open it fetches a trickle.
	Downstreams []*Breaker
	// Registerer receives the runner's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// TracerProvider makes each message's span. Defaults to the global
	// provider (otel.GetTracerProvider): one set after New is used too.
	// With a no-op provider, or the global one while none is set, no span
	// is made (it could not be recorded).
	TracerProvider trace.TracerProvider
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// tracerName names the runner's spans' instrumentation scope.
const tracerName = "github.com/jetwatch/jetwatch/service"

// consumerSpan is made once, not per message: per message, it and looking
// up the tracer were a third of handle's CPU. A slice, so passing it
// allocates none either.
var consumerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// Runner runs a pull consumer's messages through a Handler.
type Runner struct {
	js         jetstream.JetStream
	cons       jetstream.Consumer
	cfg        Config
	maxDeliver int
	// maxBatch and expires are the consumer's limits on a pull request
	// (MaxRequestBatch, MaxRequestExpires), 0 when it sets none: the
	// server refuses a request beyond them.
	maxBatch int
	expires  time.Duration
	logger   *slog.Logger

	// noTracing is set when Config.TracerProvider is a no-op one, and
	// unsetGlobal when it is unset and the global provider is OTel's own
	// as it starts, before any is set: their spans are never recorded,
	// so none is made (it cost two allocations per message).
	noTracing   bool
	unsetGlobal trace.TracerProvider
	// tracer is Config.TracerProvider's, or the global provider's (which
	// delegates to one set later, when none was set yet).
	tracer trace.Tracer

	processed *processedIDs // nil when idempotency is off
	keyPrefix string        // of the processed-id keys: the consumer's
	breaker   *breaker      // nil without a breaker around the handler
	breakers  []*breaker    // every breaker that gates fetching
	metrics   *runnerMetrics

	slots chan struct{}
	// work carries the messages the pull delivers: to the workers, or,
	// with idempotency on, to screen, which hands the workers those not
	// handled before on screened.
	work     chan jetstream.Msg
	screened chan job
	workers  sync.WaitGroup
	fetched  chan struct{} // closed when fetching has ended
	stop     context.CancelFunc
	handlers context.CancelFunc
	stopOnce sync.Once

	// flights are the messages being handled, one per worker: each worker
	// notes its message under a lock of its own, so workers never queue on
	// one lock for it.
	flights []flight

	// claims are the message ids being handled, so a duplicate delivered
	// meanwhile waits for the outcome instead of running the handler too:
	// in shards with a lock each, taken by every worker as it starts a
	// message.
	claims    [claimShards]claimShard
	claimSeed maphash.Seed
	// recording counts messages handled whose record is on its way: each
	// is acked, and its slot freed, when the record is stored.
	recording sync.WaitGroup
}

// New looks up the consumer and returns a runner for it.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Runner, error) {
	if cfg.Stream == "" || cfg.Consumer == "" || cfg.Handler == nil || cfg.Service == "" {
		return nil, errors.New("service: Stream, Consumer, Handler and Service are required")
	}
	cfg.Concurrency = max(cfg.Concurrency, 0)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 4)
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
	}
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, 10*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cons, err := js.Consumer(ctx, cfg.Stream, cfg.Consumer)
	if err != nil {
		return nil, fmt.Errorf("service: consumer %s/%s: %w", cfg.Stream, cfg.Consumer, err)
	}
	info := cons.CachedInfo()
	if info.Config.DeliverSubject != "" {
		return nil, fmt.Errorf("service: %s/%s is a push consumer; the runner pulls", cfg.Stream, cfg.Consumer)
	}
	if cfg.HeartbeatEvery == 0 {
		cfg.HeartbeatEvery = max(info.Config.AckWait/2, 100*time.Millisecond)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	r := &Runner{js: js, cons: cons, cfg: cfg, tracer: tp.Tracer(tracerName), maxDeliver: info.Config.MaxDeliver,
		noTracing: isNoopProvider(cfg.TracerProvider),
		maxBatch:  info.Config.MaxRequestBatch, expires: info.Config.MaxRequestExpires,
		logger: cfg.Logger.With("stream", cfg.Stream, "consumer", cfg.Consumer),
		slots:  make(chan struct{}, cfg.Concurrency)}
	if cfg.TracerProvider == nil && isUnsetGlobal(tp) {
		r.unsetGlobal = tp
	}
	if cfg.ProcessedBucket != "" {
		kv, err := ensure.KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: cfg.ProcessedBucket,
			Description: "ids of messages handled, for idempotent handling", TTL: cmp.Or(cfg.ProcessedTTL, 24*time.Hour)})
		if err != nil {
			return nil, fmt.Errorf("service: processed-ids bucket %s: %w", cfg.ProcessedBucket, err)
		}
		if r.processed, err = newProcessedIDs(js, kv, cfg.Concurrency); err != nil {
			return nil, err
		}
		r.keyPrefix = keyToken(cfg.Consumer) + "."
	}
	if r.metrics, err = newRunnerMetrics(cfg); err != nil {
		return nil, err
	}
	if cfg.Breaker != nil {
		if r.breaker, err = newBreaker(ctx, js, cfg.Service, cfg.Stream, cfg.Consumer, *cfg.Breaker, r.logger); err != nil {
			return nil, err
		}
		r.breakers = append(r.breakers, r.breaker)
	}
	for _, d := range cfg.Downstreams {
		d.guard(cfg.Stream, cfg.Consumer)
		r.breakers = append(r.breakers, d.b)
	}
	for _, b := range r.breakers {
		b.observe = r.metrics.breakerState
	}
	return r, nil
}

// noSpan stands for a message's span when none is made.
var noSpan trace.Span = noop.Span{}

// isNoopProvider says whether tp is OTel's no-op provider.
func isNoopProvider(tp trace.TracerProvider) bool {
	_, ok := tp.(noop.TracerProvider)
	return ok
}

// isUnsetGlobal says whether tp is the global provider OTel starts with,
// before one is set, whose spans are never recorded. (OTel's eBPF
// auto-instrumentation, which records them, is not supported.)
func isUnsetGlobal(tp trace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global" &&
		t.Elem().Name() == "tracerProvider"
}

// tracing says whether messages' spans may be recorded: not with a no-op
// provider, nor with the global one while none is set.
func (r *Runner) tracing() bool {
	return !r.noTracing && (r.unsetGlobal == nil || otel.GetTracerProvider() != r.unsetGlobal)
}

// processedKey is where a handled message id is remembered: per consumer
// (another consumer of the same event must still handle it), hashed,
// because a message id may hold characters a KV key may not.
func (r *Runner) processedKey(m jetstream.Msg) string {
	if r.processed == nil {
		return ""
	}
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id))
	// Built in place: one allocation per message, the key itself.
	var buf [128]byte
	key := append(buf[:0], r.keyPrefix...)
	return string(hex.AppendEncode(key, sum[:16]))
}

// Start fetches and handles messages in the background until Stop.
func (r *Runner) Start(ctx context.Context) error {
	fetchCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	handlerCtx, handlers := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.handlers = stop, handlers
	r.work = make(chan jetstream.Msg)
	if r.processed != nil {
		// Never full: no more messages are delivered than there are slots.
		// The pull hands a burst over at once, for screen to look up in
		// one round trip, and goes on pulling meanwhile.
		r.work = make(chan jetstream.Msg, r.cfg.Concurrency)
		// Never waited on long either: a message arrives only for a free
		// slot, and a worker holds a slot only while it handles one.
		r.screened = make(chan job, r.cfg.Concurrency)
		r.workers.Go(func() {
			defer close(r.screened)
			r.screen(handlerCtx)
		})
	}
	r.fetched = make(chan struct{})
	r.flights = make([]flight, r.cfg.Concurrency)
	r.claimSeed = maphash.MakeSeed()
	for i := range r.claims {
		r.claims[i].m = map[string]*claim{}
	}
	if r.processed != nil {
		go r.processed.run(handlerCtx)
	}
	// Each breaker appears on the dashboard, in its current state, before
	// anything is fetched: its first change then always follows it.
	for _, b := range r.breakers {
		b.report(ctx, stateName(b.state()), time.Time{})
	}
	for i := range r.cfg.Concurrency {
		f := &r.flights[i]
		r.workers.Go(func() {
			if r.processed == nil {
				for m := range r.work {
					if !r.handle(handlerCtx, f, job{m: m}) {
						<-r.slots
					}
				}
				return
			}
			for j := range r.screened {
				if !r.handle(handlerCtx, f, j) {
					<-r.slots
				}
			}
		})
	}
	go func() {
		defer close(r.fetched)
		defer close(r.work)
		r.pull(fetchCtx)
	}()
	go r.heartbeats(fetchCtx)
	return nil
}

// flight is the message a worker is handling, if any.
type flight struct {
	mu      sync.Mutex
	m       jetstream.Msg // nil between messages
	started time.Time

	// subject and name are the span name of the worker's last message's
	// subject, the worker's alone: most consumers read one subject, and
	// the name is then not built again for every message.
	subject, name string
}

// spanName is the name of the span of a message on subject.
func (f *flight) spanName(subject string) string {
	if subject != f.subject || f.name == "" {
		f.subject, f.name = subject, "process "+subject
	}
	return f.name
}

// take notes m as the worker's, from now.
func (f *flight) take(m jetstream.Msg) {
	f.mu.Lock()
	f.m, f.started = m, time.Now()
	f.mu.Unlock()
}

// land ends the flight; false when Stop gave up on its message and naked
// it already.
func (f *flight) land() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	mine := f.m != nil
	f.m = nil
	return mine
}

// claimShards is how many locks the claims are spread over.
const claimShards = 64

// claimShard is some of the claims, under their lock.
type claimShard struct {
	mu sync.Mutex
	m  map[string]*claim
}

// claimShard is where key's claim is.
func (r *Runner) claimShard(key string) *claimShard {
	return &r.claims[maphash.String(r.claimSeed, key)%claimShards]
}

// claim is a message id being handled. Its fields are under its shard's
// lock until done is closed.
type claim struct {
	// done is closed once the outcome is known; made by the first
	// duplicate that waits for it, so a claim nobody waits for costs no
	// channel.
	done    chan struct{}
	handled bool // the outcome: the handler succeeded
	waiting int  // duplicates waiting for it
}

// tryClaim takes key for this delivery, unless another delivery of the
// same id holds it (ok false).
func (r *Runner) tryClaim(key string) (c *claim, ok bool) {
	shard := r.claimShard(key)
	shard.mu.Lock()
	defer shard.mu.Unlock()
	if _, busy := shard.m[key]; busy {
		return nil, false
	}
	c = &claim{}
	shard.m[key] = c
	return c, true
}

// claim takes key for this delivery. While another delivery of the same
// id holds it, it waits for that one's outcome: dup when it was handled,
// else this delivery takes key in its place. err is ctx's once it ends.
func (r *Runner) claim(ctx context.Context, key string) (c *claim, dup bool, err error) {
	shard := r.claimShard(key)
	for {
		shard.mu.Lock()
		held, busy := shard.m[key]
		var done chan struct{}
		if busy {
			held.waiting++
			if held.done == nil {
				held.done = make(chan struct{})
			}
			done = held.done
		} else {
			c = &claim{}
			shard.m[key] = c
		}
		shard.mu.Unlock()
		if !busy {
			return c, false, nil
		}
		select {
		case <-done:
			// Set before done was closed.
			if held.handled {
				return nil, true, nil
			}
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// release gives key back with the outcome of its delivery, waking the
// duplicates waiting for it.
func (r *Runner) release(key string, c *claim, handled bool) {
	shard := r.claimShard(key)
	shard.mu.Lock()
	delete(shard.m, key)
	c.handled = handled
	if c.done != nil {
		close(c.done)
	}
	shard.mu.Unlock()
}

// job is a message for a worker, with what screen learned of it.
type job struct {
	m    jetstream.Msg
	meta *jetstream.MsgMetadata // nil until parsed
	// key is the message's processed-id key ("" without idempotency, or
	// without an id), and c its claim, held for this delivery: nil when
	// another delivery held it, and the worker waits for that one.
	key string
	c   *claim
}

// screen takes the messages the pull delivers, a burst at a time (all that
// have arrived), and looks them all up in the processed-ids bucket in one
// round trip: those handled before are acked here, the others handed to
// the workers with their claims. Each message is claimed before its
// lookup: a claim is released only once its record is stored, so a lookup
// after it finds the record. It ends when the pull has ended and what it
// delivered is handed over.
func (r *Runner) screen(ctx context.Context) {
	var direct *directget.Client
	if r.processed.direct != "" {
		var err error
		if direct, err = directget.NewClient(r.js.Conn()); err == nil {
			defer direct.Close() //nolint:errcheck // the runner is stopping
		}
	}
	var (
		burst []job
		keys  []string
	)
	for m := range r.work {
		burst, keys = burst[:0], keys[:0]
		for m != nil {
			if j, ok := r.claimed(m); ok {
				burst = append(burst, j)
				if j.c != nil {
					keys = append(keys, j.key)
				}
			}
			m = nil
			if len(keys) < maxLookup {
				select {
				case m = <-r.work:
				default:
				}
			}
		}
		var found map[string]bool
		var err error
		if len(keys) > 0 {
			found, err = r.processed.lookup(ctx, direct, keys)
		}
		for _, j := range burst {
			switch {
			case err != nil && j.c != nil:
				// Stop gave up waiting for handlers: give it back.
				r.release(j.key, j.c, false)
				r.giveBack(j.m)
			case j.c != nil && found[j.key]:
				r.release(j.key, j.c, true)
				r.metrics.result("duplicate")
				r.logger.Debug("duplicate message acknowledged without handling", "seq", j.meta.Sequence.Stream)
				j.m.Ack() //nolint:errcheck // redelivered and skipped again if lost
				<-r.slots
			default:
				select {
				case r.screened <- j:
				case <-ctx.Done():
					if j.c != nil {
						r.release(j.key, j.c, false)
					}
					r.giveBack(j.m)
				}
			}
		}
	}
}

// claimed is m as a job, with its key claimed when it has one and no
// other delivery holds it; ok is false when m was settled here (it has no
// JetStream metadata) and its slot freed.
func (r *Runner) claimed(m jetstream.Msg) (j job, ok bool) {
	j = job{m: m, key: r.processedKey(m)}
	if j.key == "" {
		return j, true
	}
	var err error
	if j.meta, err = m.Metadata(); err != nil {
		r.logger.Error("message without JetStream metadata; terminated", "subject", m.Subject(), "err", err)
		m.Term() //nolint:errcheck // nothing else to do with it
		<-r.slots
		return j, false
	}
	j.c, _ = r.tryClaim(j.key)
	return j, true
}

// giveBack naks m for redelivery and frees its slot.
func (r *Runner) giveBack(m jetstream.Msg) {
	m.Nak() //nolint:errcheck // redelivered after AckWait anyway
	<-r.slots
}

// Stop stops fetching, lets running handlers finish for up to
// ShutdownTimeout, then cancels them and naks their messages, so nothing
// in flight is lost: each message is acked, or redelivered later. A
// message the server sends to a pull request Stop has just cancelled (at
// most the free slots) is not handled here: it is redelivered once the
// consumer's AckWait passes; one that arrived and was not handed to a
// handler is naked at once. A handler that ignores its context is not
// waited for. Safe to call twice.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() {
		if r.stop == nil {
			return
		}
		r.stop()
		<-r.fetched
		finished := make(chan struct{})
		go func() {
			r.workers.Wait()
			r.recording.Wait() // their acks wait for their records
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(r.cfg.ShutdownTimeout):
			r.handlers()
			for i := range r.flights {
				f := &r.flights[i]
				f.mu.Lock()
				if f.m != nil {
					f.m.Nak() //nolint:errcheck // redelivered after AckWait anyway
					f.m = nil
				}
				f.mu.Unlock()
			}
		}
		r.handlers()
	})
}

// heartbeats sends InProgress for every message handled for longer than
// HeartbeatEvery, so a slow handler keeps its message: one ticker for the
// runner, not one per message.
func (r *Runner) heartbeats(ctx context.Context) {
	t := time.NewTicker(max(r.cfg.HeartbeatEvery/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for i := range r.flights {
				f := &r.flights[i]
				f.mu.Lock()
				if f.m != nil && now.Sub(f.started) >= r.cfg.HeartbeatEvery {
					f.m.InProgress() //nolint:errcheck // a lost heartbeat only risks a redelivery
				}
				f.mu.Unlock()
			}
		}
	}
}

// call runs the handler (through the breaker, if any), turning a panic
// into an error.
func (r *Runner) call(ctx context.Context, m jetstream.Msg) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	if r.breaker != nil {
		return r.breaker.run(func() error { return r.cfg.Handler(ctx, m) })
	}
	return r.cfg.Handler(ctx, m)
}

// rejectDelay is how long a message a breaker refused waits: the longest
// open period of the runner's breakers.
func (r *Runner) rejectDelay() time.Duration {
	d := r.cfg.Backoff[0]
	for _, b := range r.breakers {
		d = max(d, b.cfg.OpenFor)
	}
	return d
}

// handle runs the handler with InProgress heartbeats (m is f's meanwhile:
// f is the worker's) and settles the message by the outcome. later says
// the message is settled, and its slot freed, once its processed-id record
// is stored (recordHandled).
func (r *Runner) handle(ctx context.Context, f *flight, j job) (later bool) {
	r.metrics.inFlight.Inc()
	defer r.metrics.inFlight.Dec()
	m, meta, key, c := j.m, j.meta, j.key, j.c
	// In flight from here: a duplicate waiting for its claim gets
	// heartbeats too, and is naked by a Stop that gives up on it.
	f.take(m)
	if key != "" && c == nil {
		// Another delivery of the id held it when this one was screened:
		// wait for its outcome, and look the id up again if it failed.
		var dup bool
		var err error
		if c, dup, err = r.claim(ctx, key); err != nil {
			if f.land() {
				m.Nak() //nolint:errcheck // redelivered after AckWait anyway
			}
			return false
		}
		if !dup {
			seen, err := r.processed.seen(ctx, key)
			if err != nil {
				// Stop gave up waiting for handlers: give it back.
				r.release(key, c, false)
				if f.land() {
					m.Nak() //nolint:errcheck // redelivered after AckWait anyway
				}
				return false
			}
			if seen {
				r.release(key, c, true)
				dup = true
			}
		}
		if dup {
			if f.land() {
				r.metrics.result("duplicate")
				r.logger.Debug("duplicate message acknowledged without handling", "seq", meta.Sequence.Stream)
				m.Ack() //nolint:errcheck // redelivered and skipped again if lost
			}
			return false
		}
	}
	// A span per message, continuing the trace of whoever published it.
	pctx := otel.GetTextMapPropagator().Extract(ctx, tracecontext.HeaderCarrier(m.Headers()))
	span := noSpan
	if r.tracing() {
		pctx, span = r.tracer.Start(pctx, f.spanName(m.Subject()), consumerSpan...)
		defer span.End()
	}
	// Attributes only for a span that is recorded: with no tracing set up
	// they would be built for nothing, for every message.
	if span.IsRecording() {
		if !r.metadata(m, &meta) {
			if c != nil {
				r.release(key, c, false)
			}
			f.land()
			return false
		}
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject()),
			attribute.String("messaging.consumer.group.name", r.cfg.Consumer), attribute.Int64("messaging.nats.stream_sequence", int64(meta.Sequence.Stream)),
			attribute.Int64("messaging.nats.delivered", int64(meta.NumDelivered)))
	}
	started := time.Now()
	herr := r.call(pctx, m)
	if !f.land() {
		if c != nil {
			r.release(key, c, false)
		}
		return false // Stop gave up on it and naked it already
	}
	r.metrics.duration.Observe(time.Since(started).Seconds())
	if herr != nil {
		span.RecordError(herr)
		span.SetStatus(codes.Error, herr.Error())
		if !r.metadata(m, &meta) {
			if c != nil {
				r.release(key, c, false)
			}
			return false
		}
	}
	if herr == nil && c != nil {
		r.recordHandled(m, meta, key, c)
		return true
	}
	r.settle(pctx, m, meta, herr)
	if c != nil {
		r.release(key, c, false)
	}
	return false
}

// metadata parses m's metadata into *meta, unless it is there already: it
// is parsed only where it is used, as a message handled without error,
// idempotency or tracing does not need it. False when m has none: m is
// then terminated.
func (r *Runner) metadata(m jetstream.Msg, meta **jetstream.MsgMetadata) bool {
	if *meta != nil {
		return true
	}
	var err error
	if *meta, err = m.Metadata(); err != nil {
		r.logger.Error("message without JetStream metadata; terminated", "subject", m.Subject(), "err", err)
		m.Term() //nolint:errcheck // nothing else to do with it
		return false
	}
	return true
}

// recordHandled remembers m's id as processed, then acks m, releases its
// claim and frees its slot: the record is sent at once and the ack follows
// its PubAck, so the handler's worker moves on meanwhile, yet a message is
// acked only after its record is stored. Should storing it fail, even
// after a retry, m is still acked (a redelivery would only run the handler
// again) and the failure logged.
func (r *Runner) recordHandled(m jetstream.Msg, meta *jetstream.MsgMetadata, key string, c *claim) {
	r.recording.Add(1)
	r.processed.recordAsync(key, strconv.AppendUint(nil, meta.Sequence.Stream, 10), func(err error) {
		if err != nil {
			r.logger.Warn("remembering a handled message failed; a redelivery would be handled again", "seq", meta.Sequence.Stream, "err", err)
		}
		r.metrics.result("processed")
		if err := m.Ack(); err != nil {
			r.logger.Warn("ack failed; the message will be redelivered", "subject", m.Subject(), "err", err)
		}
		r.release(key, c, true)
		<-r.slots
		r.recording.Done()
	})
}

// settle acks, naks or dead-letters m by herr; meta is set unless herr is nil.
func (r *Runner) settle(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, herr error) {
	switch {
	case herr == nil:
		r.metrics.result("processed")
		// Not waited for: a lost ack only redelivers, and waiting for each
		// would cost a round trip per message. (meta may be nil here.)
		if err := m.Ack(); err != nil {
			r.logger.Warn("ack failed; the message will be redelivered", "subject", m.Subject(), "err", err)
		}
	case errors.Is(herr, gobreaker.ErrOpenState), errors.Is(herr, gobreaker.ErrTooManyRequests):
		// Not handled at all: give it back for when the breaker lets it in.
		r.metrics.result("rejected_by_breaker")
		m.NakWithDelay(r.rejectDelay()) //nolint:errcheck // redelivered after AckWait anyway
	case IsPermanent(herr):
		r.deadLetter(ctx, m, meta, deadletter.ReasonError, herr)
	case r.maxDeliver > 0 && int(meta.NumDelivered) >= r.maxDeliver:
		// The last allowed delivery: dead-letter it rather than let it
		// vanish with a max_deliver advisory.
		r.deadLetter(ctx, m, meta, deadletter.ReasonMaxDeliver, herr)
	default:
		r.metrics.result("retried")
		delay := r.cfg.Backoff[min(int(meta.NumDelivered)-1, len(r.cfg.Backoff)-1)]
		r.logger.Debug("handler failed; retrying", "seq", meta.Sequence.Stream, "delivery", meta.NumDelivered, "retry_in", delay,
			"err", herr, traceAttr(ctx))
		m.NakWithDelay(delay) //nolint:errcheck // redelivered after AckWait anyway
	}
}

// deadLetter copies the message to dlq.<stream>.<consumer> with the
// envelope, then terminates it. If the copy fails the message is naked, so
// it is retried rather than lost.
func (r *Runner) deadLetter(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, reason string, herr error) {
	out := nats.NewMsg(deadletter.Subject(meta.Stream, meta.Consumer))
	for k, v := range m.Headers() {
		out.Header[k] = v
	}
	// The dead letter carries the message's own trace context, so a
	// redelivery continues the original trace.
	out.Data = m.Data()
	deadletter.Envelope{Stream: meta.Stream, Subject: m.Subject(), Sequence: meta.Sequence.Stream, Consumer: meta.Consumer,
		Deliveries: meta.NumDelivered, Reason: reason, Error: herr.Error(), FailedAt: time.Now(), Service: r.cfg.Service}.Apply(out.Header)
	// The bridge gives its copy from the terminated advisory the same id,
	// so the DLQ keeps one.
	out.Header.Set(jetstream.MsgIDHeader, meta.Stream+":"+strconv.FormatUint(meta.Sequence.Stream, 10)+":"+meta.Consumer)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, out); err != nil {
		r.logger.Error("dead-lettering failed; the message will be retried", "seq", meta.Sequence.Stream, "err", err)
		m.NakWithDelay(r.cfg.Backoff[0]) //nolint:errcheck // redelivered after AckWait anyway
		return
	}
	r.metrics.result("dead_lettered")
	r.logger.Warn("message dead-lettered", "seq", meta.Sequence.Stream, "reason", reason, "err", herr, traceAttr(ctx))
	m.TermWithReason(reason + ": " + herr.Error()) //nolint:errcheck // the copy is safe in the DLQ
}

// traceID is the trace id of ctx's span, for log lines, or "".
// traceAttr is the trace_id of ctx's span for a log line, or nothing
// (slog drops an empty attribute) when the message carried no trace.
func traceAttr(ctx context.Context) slog.Attr {
	if id := traceID(ctx); id != "" {
		return slog.String("trace_id", id)
	}
	return slog.Attr{}
}

func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
