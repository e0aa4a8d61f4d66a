package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/internal/human"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	// Interval between the starts of two cycles. Defaults to 10 seconds.
	Interval time.Duration
	// StallAfter is how long a consumer with unacknowledged messages may go
	// without an acknowledgement before it counts as stalled (or stopped),
	// without waiting for a full window of samples: see evaluateLag.
	// Defaults to 5 minutes.
	StallAfter time.Duration
	// DeletedFor is how long a deleted consumer (one meant to stay: not
	// jetwatch's, without an inactive threshold) stays listed as stopped.
	// Defaults to 15 minutes.
	DeletedFor time.Duration
	// Retention of history. Defaults to store.Retention's defaults.
	Retention store.Retention
	// Concurrency is how many JetStream API requests are in flight at once,
	// and how many streams have their consumers read at once. Defaults to 8.
	Concurrency int
	// RequestTimeout bounds each JetStream API request. Defaults to 2
	// seconds.
	RequestTimeout time.Duration
	// CycleTimeout bounds the reading of a cycle: what has not been read by
	// then is shown as not read ("no response"), with its last numbers,
	// and what was read is stored. Defaults to 4/5 of Interval, at least 5
	// seconds.
	CycleTimeout time.Duration
	// OwnStreams are jetwatch's streams under names of the operator's
	// choosing (the DLQ and advisory streams); JETWATCH_* and
	// KV_jetwatch_* streams are always jetwatch's. Their consumers, and
	// jetwatch's durables, are left out of health, lag and stall lists
	// unless asked for. Defaults to DLQ.
	OwnStreams []string
	// APIPrefix is the JetStream API subject prefix. Defaults to "$JS.API".
	APIPrefix string
	// SystemConn is a connection in the system account used for
	// $SYS.REQ.SERVER.PING.JSZ. Defaults to the sampled connection, which
	// answers only when it is itself a system-account user.
	SystemConn *nats.Conn
	// JSZTimeout is how long to gather JSZ answers. Defaults to 1 second.
	JSZTimeout time.Duration
	// AllAccounts also reads every other account's streams and consumers
	// from JSZ each cycle (see accounts.go); SystemConn must then be a
	// system-account connection.
	AllAccounts bool
	// Registerer receives the sampler's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// TracerProvider traces each cycle as a span. Defaults to no tracing.
	TracerProvider trace.TracerProvider
}

// Sampler lists every stream and consumer each interval and stores their
// latest state and history.
type Sampler struct {
	nc       *nats.Conn
	db       *store.DB
	cfg      SamplerConfig
	logger   *slog.Logger
	metrics  *samplerMetrics
	tracer   trace.Tracer
	own      ownership
	inflight chan struct{} // one token per JetStream API request in flight
	lag      *lagTracker

	mu         sync.Mutex
	state      store.SamplerState
	exposition atomic.Pointer[exposition]
	// building is held while a cycle's series are built, when exposition
	// is nil: a scrape then waits rather than find nothing.
	building sync.RWMutex
	jszSkip  int // cycles to wait before asking JSZ again

	// gzipScrapedAt is when /metrics was last scraped with gzip, in Unix
	// nanoseconds; 0 before the first.
	gzipScrapedAt    atomic.Int64
	compressingAhead atomic.Bool   // a cycle's series are being gzipped ahead of a scrape
	ident            identityCache // the account and domain, for metrics labels

	// cycle serializes cycles and guards what one leaves to the next.
	cycle sync.Mutex
	// prev is each stream's last sample, for its rates. A consumer's is
	// the newest in its lag window: a map of its own held 100,000
	// consumers' twice, and every ephemeral consumer's ever seen.
	prev map[string]prevSample // by stream
	// settings are the consumers' config settings, decoded when changed.
	settings *settingsCache
	// byItem names the listings to read item by item, because the last
	// cycle could not read all of them: "" the streams, else a stream's
	// consumers. Their LIST would only keep the next cycle waiting.
	byItem map[string]bool
	// behind names, in order, the streams whose consumers the last cycle
	// ran out of time for: this cycle reads them first, so that a cycle
	// too short for everything still reads every consumer in turn.
	behind []string
	// lastConsumers is how many consumer rows the last cycle had, to size
	// the next's.
	lastConsumers int
	servers       []store.Server // the servers last stored
	serversLoaded bool
	// accountLag is what is kept of other accounts between cycles, by
	// account ID: their consumers' lag windows and the last counts.
	accountLag map[string]*accountMemory
	partial    string // what the last cycle could not read, to log each change once

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
	cfg.DeletedFor = cmp.Or(cfg.DeletedFor, 15*time.Minute)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 8)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, 2*time.Second)
	cfg.CycleTimeout = cmp.Or(cfg.CycleTimeout, max(5*time.Second, cfg.Interval*4/5))
	if len(cfg.OwnStreams) == 0 {
		cfg.OwnStreams = []string{DefaultDLQStream}
	}
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
	s := &Sampler{
		nc: nc, db: db, cfg: cfg,
		logger:     cfg.Logger.With("component", "sampler"),
		prev:       map[string]prevSample{},
		settings:   newSettingsCache(),
		byItem:     map[string]bool{},
		own:        ownership{streams: cfg.OwnStreams},
		inflight:   make(chan struct{}, cfg.Concurrency),
		lag:        newLagTracker(cfg.Interval, cfg.StallAfter, cfg.DeletedFor),
		accountLag: map[string]*accountMemory{},
		tracer:     tracecontext.Tracer(cfg.TracerProvider, tracerName),
	}
	s.state.AllAccounts = cfg.AllAccounts
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
func (s *Sampler) State() store.SamplerState {
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
	s.cycle.Lock()
	defer s.cycle.Unlock()
	for _, st := range streams {
		if at := readAt(st.Unread, st.SampledAt); at != nil {
			s.prev[st.Name] = prevSample{at: *at, seq: st.LastSeq, bytes: st.Bytes}
		}
	}
	return nil
}

// SampleOnce runs one cycle: read, judge, derive rates, store. It is
// bounded by CycleTimeout however many servers are down: what could not be
// read is stored as such (Unread, servers DownSince), with its last
// numbers, never dropped. An error is returned only when nothing could be
// stored.
func (s *Sampler) SampleOnce(ctx context.Context) (_ store.Cycle, err error) {
	s.cycle.Lock()
	defer s.cycle.Unlock()
	ctx, span := s.tracer.Start(ctx, "sample cycle")
	defer func() { endCycleSpan(span, err) }()
	start := s.cfg.Now()
	cycle := store.Cycle{At: start.UTC().Truncate(time.Millisecond), ConsumersComplete: map[string]bool{}}
	var pmu sync.Mutex
	var problems []problem
	note := func(kind, key, msg string) {
		pmu.Lock()
		problems = append(problems, problem{key: key, msg: msg})
		pmu.Unlock()
		s.metrics.errors.WithLabelValues(kind).Inc()
	}

	s.beginLag(ctx, start, note)

	if !s.nc.IsConnected() {
		note("nats", "nats", "NATS is not connected: showing the last stored sample until it is back")
		s.finish(ctx, start, cycle, problems, false)
		return cycle, errors.New("nats not connected")
	}

	rctx, cancel := context.WithTimeout(ctx, s.cfg.CycleTimeout)
	defer cancel()
	servers := make(chan []store.Server, 1)
	go func() { servers <- s.sampleServers(rctx, cycle.At, note) }()
	ident := make(chan identity, 1)
	go func() { ident <- s.identify(rctx) }()
	stored := newStoredRows(s.db)
	// Sized for the consumers of the last cycle, or those stored before
	// the first.
	expect := s.lastConsumers
	if expect == 0 {
		expect = s.lag.count()
	}
	rows := newConsumerRows(expect)
	streams, consumers := s.readAll(ctx, rctx, stored, rows, cycle.At, note)
	cycle.Servers = <-servers
	id := <-ident
	// Other accounts are read while this one is judged and stored.
	accounts := make(chan []store.Account, 1)
	if s.cfg.AllAccounts && cycle.Servers != nil {
		go func() { accounts <- s.readAccounts(rctx, cycle.Servers, id, cycle.At) }()
		// A cycle that ends early does not leave the reading behind.
		defer func() {
			if accounts != nil {
				cancel()
				<-accounts
			}
		}()
	} else {
		accounts <- nil
	}

	now := s.cfg.Now()
	if !rows.asRead {
		n := 0
		for _, l := range consumers {
			n += len(l.items) + len(l.unread)
		}
		rows.size(n)
	}
	cycle.Streams = make([]store.Stream, 0, len(streams.items)+len(streams.unread))
	// order lists where each stream's consumer rows are, in the cycle's
	// order: the streams as listed, then those not read.
	order := make([]rowSpan, 0, len(streams.items)+len(streams.unread))
	for _, info := range streams.items {
		name := info.Config.Name
		cons := consumers[name]
		if cons.parentGone {
			s.logger.InfoContext(ctx, "stream deleted while sampling", "stream", name)
			continue
		}
		st := streamFromInfo(info, cycle.At)
		st.Own = s.own.stream(name)
		sp, ok := rows.built(name)
		if !ok {
			// Not built as read: named by the last cycle, its consumers
			// were read before its info; or not read at all.
			lo := len(rows.rows)
			rows.rows = s.consumersOf(ctx, rows.rows, name, cons, stored, cycle.At, now, note)
			sp = rowSpan{lo, len(rows.rows)}
			cons.items = nil
			consumers[name] = cons
		}
		order = append(order, sp)
		if cons.complete {
			cycle.ConsumersComplete[name] = true
		}
		judgeStream(&st, rows.rows[sp.lo:sp.hi])
		if p, ok := s.prev[name]; ok {
			if dt := cycle.At.Sub(p.at).Seconds(); dt > 0 {
				st.InPerSec = rate(p.seq, st.LastSeq, dt)
				st.BytesInPerSec = rate(p.bytes, st.Bytes, dt)
			}
		}
		s.prev[name] = prevSample{at: cycle.At, seq: st.LastSeq, bytes: st.Bytes}
		cycle.Streams = append(cycle.Streams, st)
	}
	streams.items = nil
	if streams.namesFailed {
		// Reading stream by stream is the normal way round a slow LIST;
		// only not knowing which streams exist is a gap.
		note("list_streams", "list streams", fmt.Sprintf("%v: only the streams seen before were read; new ones show up once NATS answers", streams.problem))
	}
	var known map[string]store.Stream
	if len(streams.unread) > 0 {
		known = s.storedStreams(ctx, stored, note)
	}
	for name, u := range streams.unread {
		prev, ok := known[name]
		st := unreadStream(prev, ok, name, u, cycle.At)
		st.Own = s.own.stream(name)
		cycle.Streams = append(cycle.Streams, st)
		note("stream_unread", "stream "+name+": "+u.Why, "stream "+name+": "+st.Health.Reasons[0])
		if l, ok := consumers[name]; ok && len(l.items) > 0 && !l.parentGone {
			// Its consumers were read first, as the last cycle had no
			// time for them, before the time ran out for the stream.
			lo := len(rows.rows)
			rows.rows = s.consumersOf(ctx, rows.rows, name, l, stored, cycle.At, now, note)
			order = append(order, rowSpan{lo, len(rows.rows)})
			if l.complete {
				cycle.ConsumersComplete[name] = true
			}
			continue
		}
		// Its consumers cannot be asked either: they keep their last
		// numbers, marked as not read.
		storedCons, err := stored.consumers(ctx, name)
		if err != nil {
			note("store", "consumers of "+name, "reading the stored consumers of "+name+" failed: "+err.Error())
			continue
		}
		lo := len(rows.rows)
		for _, c := range storedCons {
			cu := store.Unread{Why: u.Why, Detail: "its stream " + name + " could not be read"}
			rows.rows = append(rows.rows, unreadConsumer(c, true, c.Name, cu, cycle.At))
		}
		order = append(order, rowSpan{lo, len(rows.rows)})
	}
	cycle.Consumers = rows.arrange(order)
	s.lastConsumers = len(cycle.Consumers)
	s.settings.endCycle()
	slices.SortFunc(cycle.Streams, func(a, b store.Stream) int { return strings.Compare(a.Name, b.Name) })
	cycle.StreamsComplete = streams.complete
	s.lag.end(cycle.Streams, streams.complete)
	byItem := map[string]bool{}
	for name, l := range consumers {
		if l.stillByItem() {
			byItem[name] = true
		}
	}
	byItem[""] = streams.stillByItem()
	s.byItem = byItem
	s.behind = nextBehind(s.behind, streams, consumers)

	if len(cycle.Streams) == 0 && !streams.complete {
		// Nothing is stored: the settings cache may have dropped configs
		// the index does not have.
		s.settings = newSettingsCache()
		s.finish(ctx, start, cycle, problems, false)
		return cycle, fmt.Errorf("list streams: %w", streams.problem)
	}
	saveStart := s.cfg.Now()
	err = s.db.SaveCycle(ctx, cycle)
	s.mu.Lock()
	s.state.LastSaveDuration = s.cfg.Now().Sub(saveStart)
	s.mu.Unlock()
	if err != nil {
		// The settings cache drops configs the index was to have
		// stored: start again from every config.
		s.settings = newSettingsCache()
		note("store", "store", "saving the sample failed: "+err.Error())
		s.finish(ctx, start, cycle, problems, false)
		return cycle, err
	}
	others := <-accounts
	accounts = nil
	s.judgeAccounts(others, cycle.At, s.cfg.Now())
	s.setAccounts(id, others)
	s.publishMetrics(&cycle, id, others)
	s.compact(ctx, now, note)
	s.finish(ctx, start, cycle, problems, true)
	return cycle, nil
}

// nextBehind lists the streams whose consumers a cycle ran out of time
// for: those already behind before first, in their order, so that every
// stream gets its turn however short the cycles.
func nextBehind(before []string, streams listed[jetstream.StreamInfo], consumers map[string]listed[consumerInfo]) []string {
	late := map[string]bool{}
	for name, l := range consumers {
		if l.late {
			late[name] = true
		}
	}
	if !streams.refused {
		// Streams NATS did not answer for keep their consumers unasked
		// too: asking would only wait for the same servers.
		for _, name := range streams.lateItems {
			late[name] = true
		}
	}
	next := make([]string, 0, len(late))
	for _, name := range before {
		if late[name] {
			next = append(next, name)
			delete(late, name)
		}
	}
	return append(next, slices.Sorted(maps.Keys(late))...)
}

// consumersOf turns one stream's consumer listing into the index's shape,
// appended to dst in name order: those read judged and with rates, those
// not read with their last numbers.
func (s *Sampler) consumersOf(ctx context.Context, dst []store.Consumer, stream string, l listed[consumerInfo], stored *storedRows,
	at, now time.Time, note func(kind, key, msg string)) []store.Consumer {
	first := len(dst)
	out := dst
	for _, info := range l.items {
		// Kept for the next cycle only as it goes into this one.
		s.settings.touch(stream, info.Name)
		if err := info.Config.settingsErr; err != nil {
			note("list_consumers", "consumer config "+stream+"/"+info.Name, err.Error()+": its settings are shown empty")
		}
		c := consumerFromInfo(info, at)
		c.Own = s.own.consumer(stream, c.Name, c.Description)
		if p, ok := s.lag.judge(&c, !c.Own && info.Config.InactiveThreshold == 0, at, now); ok {
			if dt := float64(at.UnixMilli()-p.at) / 1000; dt > 0 {
				c.DeliveredPerSec = rate(p.delivered, c.Delivered.ConsumerSeq, dt)
				c.AckedPerSec = rate(p.ackFloor, c.AckFloor.ConsumerSeq, dt)
			}
		}
		out = append(out, c)
	}
	if l.notReached {
		note("list_consumers", "list consumers of "+stream+": out of time", fmt.Sprintf("%v: read first next cycle", l.problem))
	}
	if l.namesFailed {
		note("list_consumers", "list consumers of "+stream, fmt.Sprintf("%v: only the consumers seen before were read; new ones show up once NATS answers", l.problem))
	}
	if len(l.unread) > 0 {
		prevRows := map[string]store.Consumer{}
		if cs, err := stored.consumers(ctx, stream); err == nil {
			for _, c := range cs {
				prevRows[c.Name] = c
			}
		}
		for name, u := range l.unread {
			prev, ok := prevRows[name]
			c := unreadConsumer(prev, ok, name, u, at)
			c.Stream = stream
			c.Own = s.own.consumer(stream, name, prev.Description)
			s.lag.touch(stream, name)
			s.settings.touch(stream, name)
			out = append(out, c)
			note("consumer_unread", "consumer "+stream+"/"+name+": "+u.Why, "consumer "+stream+" / "+name+": "+c.Health.Reasons[0])
		}
	}
	gone, err := s.lag.deleted(stream, l.complete, at, func() ([]store.Consumer, error) { return s.db.Consumers(ctx, stream) })
	if err != nil {
		note("store", "consumers of "+stream, "reading the stored consumers of "+stream+" failed: "+err.Error())
	}
	out = append(out, gone...)
	slices.SortFunc(out[first:], func(a, b store.Consumer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readAll reads every stream and, as soon as a stream is read, its
// consumers; the streams whose consumers the last cycle had no time for
// go first. Requests are bounded by rctx; the index is read with ctx.
func (s *Sampler) readAll(ctx, rctx context.Context, stored *storedRows, rows *consumerRows, at time.Time,
	note func(kind, key, msg string)) (listed[jetstream.StreamInfo], map[string]listed[consumerInfo]) {
	byItem := s.byItem
	prefix := s.cfg.APIPrefix

	// A stream to read the consumers of; info is nil for one named by the
	// last cycle, whose info has not been read yet.
	type job struct {
		name string
		info *jetstream.StreamInfo
	}
	var mu sync.Mutex
	consumers := map[string]listed[consumerInfo]{}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			var buf []store.Consumer // a stream's rows, before they join the cycle's
			for j := range jobs {
				var l listed[consumerInfo]
				if j.info != nil && j.info.State.Consumers == 0 {
					// The stream info already says there is nothing to
					// list, so stored consumers of this stream are gone.
					l.complete = true
				} else {
					name := j.name
					l = readListing(rctx, s, listing{
						what:  "consumers of " + name,
						list:  prefix + ".CONSUMER.LIST." + name,
						names: prefix + ".CONSUMER.NAMES." + name,
						info:  func(c string) string { return prefix + ".CONSUMER.INFO." + name + "." + c },
						gone:  jetstream.JSErrCodeConsumerNotFound, parentGone: jetstream.JSErrCodeStreamNotFound,
					}, byItem[name], func() ([]string, error) {
						return stored.consumerNames(ctx, name)
					}, func(c *consumerInfo) string { return c.Name }, func(*consumerInfo) {})
				}
				for _, info := range l.items {
					info.Config.settingsErr = s.settings.resolve(j.name, info)
				}
				if rows.asRead && j.info != nil && !l.parentGone {
					// Its stream is read: its rows are built now, and
					// its infos go.
					buf = s.consumersOf(ctx, buf[:0], j.name, l, stored, at, s.cfg.Now(), note)
					rows.add(j.name, buf)
					clear(buf)
					l.items = nil
				}
				mu.Lock()
				consumers[j.name] = l
				mu.Unlock()
			}
		})
	}
	// One feeder hands out the streams: first those the last cycle had
	// no time for, then each as the stream listing reads it. (A page of
	// streams waits for one request in flight at most: waiting senders
	// on a channel are served in turn.)
	listedStreams := make(chan job, 256)
	go func() {
		defer close(jobs)
		dispatched := make(map[string]bool, len(s.behind))
		for _, name := range s.behind {
			dispatched[name] = true
			jobs <- job{name: name}
		}
		for j := range listedStreams {
			if !dispatched[j.name] {
				dispatched[j.name] = true
				jobs <- j
			}
		}
	}()
	streams := readListing(rctx, s, listing{
		what:  "streams",
		list:  prefix + ".STREAM.LIST",
		names: prefix + ".STREAM.NAMES",
		info:  func(name string) string { return prefix + ".STREAM.INFO." + name },
		gone:  jetstream.JSErrCodeStreamNotFound,
	}, byItem[""], func() ([]string, error) {
		sts, err := stored.streams(ctx)
		return namesOf(sts, func(st store.Stream) string { return st.Name }), err
	}, func(si *jetstream.StreamInfo) string { return si.Config.Name }, func(si *jetstream.StreamInfo) {
		listedStreams <- job{name: si.Config.Name, info: si}
	})
	close(listedStreams)
	wg.Wait()
	return streams, consumers
}

func namesOf[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

// storedRows reads what the index holds from earlier cycles, at most once
// per cycle and stream: what a cycle does not read keeps showing it.
type storedRows struct {
	db *store.DB

	mu          sync.Mutex
	streamsRead bool
	streamRows  []store.Stream
	streamsErr  error
	byStream    map[string][]store.Consumer
}

func newStoredRows(db *store.DB) *storedRows {
	return &storedRows{db: db, byStream: map[string][]store.Consumer{}}
}

func (r *storedRows) streams(ctx context.Context) ([]store.Stream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.streamsRead {
		r.streamRows, r.streamsErr = r.db.Streams(ctx)
		r.streamsRead = true
	}
	return r.streamRows, r.streamsErr
}

func (r *storedRows) consumers(ctx context.Context, stream string) ([]store.Consumer, error) {
	r.mu.Lock()
	cs, ok := r.byStream[stream]
	r.mu.Unlock()
	if ok {
		return cs, nil
	}
	cs, err := r.db.Consumers(ctx, stream)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.byStream[stream] = cs
	r.mu.Unlock()
	return cs, nil
}

// consumerNames are the names of a stream's stored consumers, read
// without decoding the rows unless they were read already.
func (r *storedRows) consumerNames(ctx context.Context, stream string) ([]string, error) {
	r.mu.Lock()
	cs, ok := r.byStream[stream]
	r.mu.Unlock()
	if ok {
		return namesOf(cs, func(c store.Consumer) string { return c.Name }), nil
	}
	return r.db.ConsumerNames(ctx, stream)
}

// storedStreams is the index's latest row of every stream, by name: what
// an unread stream keeps showing.
func (s *Sampler) storedStreams(ctx context.Context, stored *storedRows, note func(kind, key, msg string)) map[string]store.Stream {
	sts, err := stored.streams(ctx)
	if err != nil {
		note("store", "streams", "reading the stored streams failed: "+err.Error())
		return nil
	}
	out := make(map[string]store.Stream, len(sts))
	for _, st := range sts {
		out[st.Name] = st
	}
	return out
}

// unreadStream is a stream that could not be read: its last row, or just
// its name when it never was read, marked red with why.
func unreadStream(prev store.Stream, ok bool, name string, u store.Unread, at time.Time) store.Stream {
	st := store.Stream{Name: name}
	if ok {
		st = prev
		u.ReadAt = readAt(prev.Unread, prev.SampledAt)
	}
	st.SampledAt, st.InPerSec, st.BytesInPerSec = at, 0, 0
	st.Unread = &u
	st.Health = unreadHealth(u, at)
	return st
}

// unreadConsumer is unreadStream for a consumer.
func unreadConsumer(prev store.Consumer, ok bool, name string, u store.Unread, at time.Time) store.Consumer {
	c := store.Consumer{Name: name}
	if ok {
		c = prev
		u.ReadAt = readAt(prev.Unread, prev.SampledAt)
	}
	c.SampledAt, c.DeliveredPerSec, c.AckedPerSec = at, 0, 0
	c.Unread = &u
	c.Health = unreadHealth(u, at)
	return c
}

// readAt is when a row's numbers were read: when it was sampled, or as
// long ago as it already said.
func readAt(prev *store.Unread, sampledAt time.Time) *time.Time {
	if prev != nil {
		return prev.ReadAt
	}
	return &sampledAt
}

func unreadHealth(u store.Unread, at time.Time) store.Health {
	h := store.Health{Level: store.HealthOK}
	last := "never read"
	if u.ReadAt != nil {
		last = fmt.Sprintf("numbers last read %s ago", human.Duration(at.Sub(*u.ReadAt)))
	}
	h.Raise(store.HealthCritical, fmt.Sprintf("%s: %s; %s", u.Why, u.Detail, last))
	return h
}

// problem is something a cycle could not do, in the operator's words;
// key says what and why without the details that change every cycle.
type problem struct {
	key, msg string
}

// maxShownProblems bounds the problems the state and the log list: with a
// node down, hundreds of consumers may be unread for the same reason.
const maxShownProblems = 20

func (s *Sampler) finish(ctx context.Context, start time.Time, c store.Cycle, problems []problem, saved bool) {
	d := s.cfg.Now().Sub(start)
	s.metrics.duration.Observe(d.Seconds())
	slices.SortFunc(problems, func(a, b problem) int { return strings.Compare(a.key, b.key) })
	msgs := make([]string, 0, min(len(problems), maxShownProblems+1))
	keys := make([]string, len(problems))
	for i, p := range problems {
		keys[i] = p.key
		if i < maxShownProblems {
			msgs = append(msgs, p.msg)
		}
	}
	if n := len(problems) - maxShownProblems; n > 0 {
		msgs = append(msgs, fmt.Sprintf("… and %d more", n))
	}
	s.mu.Lock()
	s.state.Errors = msgs
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
	recordCycle(ctx, c, msgs, saved)
	// What could not be read is logged when it changes, not every cycle:
	// a node down for an hour says so once.
	partial := strings.Join(keys, "\n")
	switch {
	case partial == s.partial:
	case len(problems) > 0:
		s.logger.WarnContext(ctx, "sample cycle partial: some of NATS could not be read; the rest is shown, and what is missing is marked",
			"not_read", strings.Join(msgs, "; "), "duration", d.Round(time.Millisecond), "saved", saved)
	default:
		s.logger.InfoContext(ctx, "sample cycle complete again: everything could be read", "duration", d.Round(time.Millisecond))
	}
	s.partial = partial
	s.logger.Log(ctx, slog.LevelDebug, "sample cycle",
		"streams", len(c.Streams), "consumers", len(c.Consumers), "servers", len(c.Servers),
		"duration", d.Round(time.Millisecond), "saved", saved, "problems", len(problems))
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

func (s *Sampler) compact(ctx context.Context, now time.Time, note func(kind, key, msg string)) {
	if now.Sub(s.lastCompact) < compactEvery {
		return
	}
	s.lastCompact = now
	res, err := s.db.Compact(ctx, now, s.cfg.Retention)
	if err != nil {
		note("store", "compact", "compacting history failed: "+err.Error())
		return
	}
	if res.Downsampled > 0 || res.Deleted > 0 || res.Records > 0 {
		s.logger.InfoContext(ctx, "history compacted", "downsampled_rows", res.Downsampled, "expired_rows", res.Deleted,
			"expired_records", res.Records)
	}
}

// beginLag starts the lag judgement of a cycle: the windows seeded from
// the stored samples on the first, and the breakers as they are now.
func (s *Sampler) beginLag(ctx context.Context, now time.Time, note func(kind, key, msg string)) {
	if err := s.lag.seed(ctx, s.db, now); err != nil {
		note("store", "lag windows", "reading the last samples failed, so lag is judged from new samples only: "+err.Error())
	}
	breakers, err := s.db.Breakers(ctx, now)
	if err != nil {
		note("store", "breakers", "reading the breakers failed, so this cycle's health leaves them out: "+err.Error())
	}
	s.lag.begin(breakers)
}
