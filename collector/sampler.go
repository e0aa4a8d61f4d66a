package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	// Interval between the starts of two cycles. Defaults to 10 seconds.
	Interval time.Duration
	// StallAfter is how long a consumer with pending messages may go without
	// a delivery before it counts as stalled. Defaults to 5 minutes.
	StallAfter time.Duration
	// Retention of history. Defaults to store.Retention's defaults.
	Retention store.Retention
	// Concurrency is how many consumer-list requests are in flight at once.
	// Defaults to 8.
	Concurrency int
	// RequestTimeout bounds each JetStream API request. Defaults to 5 seconds.
	RequestTimeout time.Duration
	// APIPrefix is the JetStream API subject prefix. Defaults to "$JS.API".
	APIPrefix string
	// SystemConn is a connection in the system account used for
	// $SYS.REQ.SERVER.PING.JSZ. Defaults to the sampled connection, which
	// answers only when it is itself a system-account user.
	SystemConn *nats.Conn
	// JSZTimeout is how long to gather JSZ answers. Defaults to 1 second.
	JSZTimeout time.Duration
	// Registerer receives the sampler's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// TracerProvider traces each cycle as a span. Defaults to no tracing.
	TracerProvider trace.TracerProvider
}

// State is what the sampler reports about itself to the UI and probes.
type State struct {
	FirstCycleDone bool
	LastCycleAt    time.Time
	LastDuration   time.Duration
	Streams        int
	Consumers      int
	// Errors are the problems of the last cycle, in the operator's words.
	Errors []string
	// JSZ is empty while per-server health is available, else why not.
	JSZ string
}

// Sampler lists every stream and consumer each interval and stores their
// latest state and history.
type Sampler struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	db      *store.DB
	cfg     SamplerConfig
	logger  *slog.Logger
	metrics *samplerMetrics
	tracer  trace.Tracer

	mu         sync.Mutex
	state      State
	exposition atomic.Pointer[exposition]
	prev       map[string]prevSample // by stream, or stream + "\x00" + consumer
	jszSkip    int                   // cycles to wait before asking JSZ again

	lastCompact time.Time
	stop        context.CancelFunc
	done        chan struct{}
	stopOnce    sync.Once
}

type prevSample struct {
	at       time.Time
	seq      uint64 // stream: last seq; consumer: delivered consumer seq
	ackFloor uint64
	bytes    uint64
}

// NewSampler returns a sampler of nc's account writing to db.
func NewSampler(nc *nats.Conn, db *store.DB, cfg SamplerConfig) (*Sampler, error) {
	cfg.Interval = cmp.Or(cfg.Interval, 10*time.Second)
	cfg.StallAfter = cmp.Or(cfg.StallAfter, 5*time.Minute)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 8)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, 5*time.Second)
	cfg.APIPrefix = cmp.Or(cfg.APIPrefix, "$JS.API")
	cfg.JSZTimeout = cmp.Or(cfg.JSZTimeout, time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SystemConn == nil {
		cfg.SystemConn = nc
	}
	if cfg.Interval < 100*time.Millisecond {
		return nil, fmt.Errorf("sample interval %s is too short (minimum 100ms)", cfg.Interval)
	}
	ret, err := cfg.Retention.WithDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Retention = ret
	js, err := jetstream.NewWithAPIPrefix(nc, cfg.APIPrefix)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Sampler{
		nc: nc, js: js, db: db, cfg: cfg,
		logger: cfg.Logger.With("component", "sampler"),
		prev:   map[string]prevSample{},
		tracer: tracecontext.Tracer(cfg.TracerProvider, tracerName),
	}
	s.metrics = newSamplerMetrics(s)
	if err := s.metrics.register(cfg.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// Start loads the last stored state (so rates continue across restarts) and
// starts sampling in the background, the first cycle at once.
func (s *Sampler) Start(ctx context.Context) error {
	if err := s.loadPrevious(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	s.done = make(chan struct{})
	go s.run(ctx)
	return nil
}

// Stop stops sampling and waits for a running cycle to end. Safe to call
// twice, and before Start.
func (s *Sampler) Stop() {
	s.stopOnce.Do(func() {
		if s.stop == nil {
			return
		}
		s.stop()
		<-s.done
	})
}

// State reports the sampler's state; safe for concurrent use.
func (s *Sampler) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Errors = append([]string(nil), st.Errors...)
	return st
}

func (s *Sampler) run(ctx context.Context) {
	defer close(s.done)
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	for {
		if _, err := s.SampleOnce(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("sample cycle failed; will retry next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (s *Sampler) loadPrevious(ctx context.Context) error {
	streams, err := s.db.Streams(ctx)
	if err != nil {
		return fmt.Errorf("load previous samples: %w", err)
	}
	consumers, err := s.db.AllConsumers(ctx)
	if err != nil {
		return fmt.Errorf("load previous samples: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range streams {
		s.prev[st.Name] = prevSample{at: st.SampledAt, seq: st.LastSeq, bytes: st.Bytes}
	}
	for _, c := range consumers {
		s.prev[c.Stream+"\x00"+c.Name] = prevSample{at: c.SampledAt, seq: c.Delivered.ConsumerSeq, ackFloor: c.AckFloor.ConsumerSeq}
	}
	return nil
}

// SampleOnce runs one cycle: list, judge, derive rates, store. Problems with
// single streams or consumers are recorded and the cycle goes on; an error is
// returned only when nothing could be stored.
func (s *Sampler) SampleOnce(ctx context.Context) (_ store.Cycle, err error) {
	ctx, span := s.tracer.Start(ctx, "sample cycle")
	defer func() { endCycleSpan(span, err) }()
	start := s.cfg.Now()
	cycle := store.Cycle{At: start.UTC().Truncate(time.Millisecond), ConsumersComplete: map[string]bool{}}
	var problems []string
	note := func(kind, msg string) {
		problems = append(problems, msg)
		s.metrics.errors.WithLabelValues(kind).Inc()
	}

	if !s.nc.IsConnected() {
		note("nats", "NATS is not connected: showing the last stored sample until it is back")
		s.finish(ctx, start, cycle, problems, false)
		return cycle, errors.New("nats not connected")
	}

	infos, listErr := s.listStreams(ctx)
	if listErr != nil {
		note("list_streams", fmt.Sprintf("listing streams stopped after %d: %v", len(infos), listErr))
	} else {
		cycle.StreamsComplete = true
	}
	for _, info := range infos {
		cycle.Streams = append(cycle.Streams, streamFromInfo(info, cycle.At))
	}

	consumersByStream := s.listAllConsumers(ctx, cycle.Streams, cycle.ConsumersComplete, note)

	now := s.cfg.Now()
	s.mu.Lock()
	for i := range cycle.Streams {
		st := &cycle.Streams[i]
		cons := consumersByStream[st.Name]
		for j := range cons {
			c := &cons[j]
			judgeConsumer(c, now, s.cfg.StallAfter)
			key := st.Name + "\x00" + c.Name
			if p, ok := s.prev[key]; ok {
				if dt := cycle.At.Sub(p.at).Seconds(); dt > 0 {
					c.DeliveredPerSec = rate(p.seq, c.Delivered.ConsumerSeq, dt)
					c.AckedPerSec = rate(p.ackFloor, c.AckFloor.ConsumerSeq, dt)
				}
			}
			s.prev[key] = prevSample{at: cycle.At, seq: c.Delivered.ConsumerSeq, ackFloor: c.AckFloor.ConsumerSeq}
		}
		judgeStream(st, cons)
		if p, ok := s.prev[st.Name]; ok {
			if dt := cycle.At.Sub(p.at).Seconds(); dt > 0 {
				st.InPerSec = rate(p.seq, st.LastSeq, dt)
				st.BytesInPerSec = rate(p.bytes, st.Bytes, dt)
			}
		}
		s.prev[st.Name] = prevSample{at: cycle.At, seq: st.LastSeq, bytes: st.Bytes}
		cycle.Consumers = append(cycle.Consumers, cons...)
	}
	s.mu.Unlock()

	cycle.Servers = s.sampleServers(ctx, note)

	if len(cycle.Streams) == 0 && listErr != nil {
		s.finish(ctx, start, cycle, problems, false)
		return cycle, fmt.Errorf("list streams: %w", listErr)
	}
	if err := s.db.SaveCycle(ctx, cycle); err != nil {
		note("store", "saving the sample failed: "+err.Error())
		s.finish(ctx, start, cycle, problems, false)
		return cycle, err
	}
	s.exposition.Store(renderExposition(&cycle))
	s.compact(ctx, now, note)
	s.finish(ctx, start, cycle, problems, true)
	return cycle, nil
}

func (s *Sampler) finish(ctx context.Context, start time.Time, c store.Cycle, problems []string, saved bool) {
	d := s.cfg.Now().Sub(start)
	s.metrics.duration.Observe(d.Seconds())
	s.mu.Lock()
	s.state.Errors = problems
	if saved {
		s.state.FirstCycleDone = true
		s.state.LastCycleAt = c.At
		s.state.LastDuration = d
		s.state.Streams = len(c.Streams)
		s.state.Consumers = len(c.Consumers)
	}
	s.mu.Unlock()
	if saved {
		s.metrics.lastSample.Set(float64(c.At.UnixMilli()) / 1000)
	}
	level := slog.LevelDebug
	if len(problems) > 0 {
		level = slog.LevelWarn
	}
	recordCycle(ctx, c, problems, saved)
	s.logger.Log(ctx, level, "sample cycle",
		"streams", len(c.Streams), "consumers", len(c.Consumers), "servers", len(c.Servers),
		"duration", d.Round(time.Millisecond), "saved", saved, "problems", problems)
}

func (s *Sampler) listStreams(ctx context.Context) ([]*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout*4)
	defer cancel()
	lister := s.js.ListStreams(ctx)
	var infos []*jetstream.StreamInfo
	for info := range lister.Info() {
		infos = append(infos, info)
	}
	if err := lister.Err(); err != nil {
		return infos, err
	}
	return infos, nil
}

// consumerListResponse is the JetStream API's answer to CONSUMER.LIST.
type consumerListResponse struct {
	Total     int                       `json:"total"`
	Offset    int                       `json:"offset"`
	Limit     int                       `json:"limit"`
	Consumers []*jetstream.ConsumerInfo `json:"consumers"`
	Error     *jetstream.APIError       `json:"error,omitempty"`
}

// listAllConsumers lists the consumers of every stream with bounded
// concurrency. A stream whose listing fails keeps its stored consumers.
func (s *Sampler) listAllConsumers(ctx context.Context, streams []store.Stream, complete map[string]bool, note func(kind, msg string)) map[string][]store.Consumer {
	type result struct {
		stream    string
		consumers []store.Consumer
		err       error
	}
	var names []string
	for i := range streams {
		if streams[i].ConsumerCount == 0 {
			// The stream info already says there is nothing to list, so any
			// stored consumers of this stream are gone.
			complete[streams[i].Name] = true
			continue
		}
		names = append(names, streams[i].Name)
	}
	jobs := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, max(len(names), 1)) {
		wg.Go(func() {
			for name := range jobs {
				cons, err := s.listConsumers(ctx, name)
				results <- result{name, cons, err}
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, name := range names {
			select {
			case jobs <- name:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	out := make(map[string][]store.Consumer, len(streams))
	for r := range results {
		if r.err != nil {
			var apiErr *jetstream.APIError
			if errors.As(r.err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound {
				s.logger.InfoContext(ctx, "stream deleted while sampling", "stream", r.stream)
				continue
			}
			note("list_consumers", fmt.Sprintf("listing consumers of stream %s failed: %v", r.stream, r.err))
			continue
		}
		complete[r.stream] = true
		out[r.stream] = r.consumers
	}
	return out
}

func (s *Sampler) listConsumers(ctx context.Context, stream string) ([]store.Consumer, error) {
	var out []store.Consumer
	subject := s.cfg.APIPrefix + ".CONSUMER.LIST." + stream
	at := s.cfg.Now().UTC()
	for offset := 0; ; {
		var resp consumerListResponse
		if err := apiRequest(ctx, s.nc, s.cfg.RequestTimeout, subject, map[string]int{"offset": offset}, &resp); err != nil {
			return out, err
		}
		for _, ci := range resp.Consumers {
			if ci != nil {
				out = append(out, consumerFromInfo(ci, at))
			}
		}
		offset += len(resp.Consumers)
		if len(resp.Consumers) == 0 || offset >= resp.Total {
			return out, nil
		}
	}
}

func rate(prev, cur uint64, seconds float64) float64 {
	if cur < prev {
		// A reset (stream purged and recreated, consumer reset): no rate
		// can be derived from this pair.
		return 0
	}
	return float64(cur-prev) / seconds
}

// compactEvery is how often history is downsampled and expired.
const compactEvery = 5 * time.Minute

func (s *Sampler) compact(ctx context.Context, now time.Time, note func(kind, msg string)) {
	if now.Sub(s.lastCompact) < compactEvery {
		return
	}
	s.lastCompact = now
	res, err := s.db.Compact(ctx, now, s.cfg.Retention)
	if err != nil {
		note("store", "compacting history failed: "+err.Error())
		return
	}
	if res.Downsampled > 0 || res.Deleted > 0 {
		s.logger.InfoContext(ctx, "history compacted", "downsampled_rows", res.Downsampled, "expired_rows", res.Deleted)
	}
}
