package journey

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/internal/streamreader"
	"github.com/jetwatch/jetwatch/store"
)

// positionPrefix names each followed stream's position in
// stream_positions: "journey:ORDERS".
const positionPrefix = "journey:"

// Defaults of IndexConfig.
const (
	DefaultRetention = 72 * time.Hour
	defaultBatch     = 1000
	defaultDiscover  = 10 * time.Second
	defaultTrimEvery = time.Minute
	// trimBatches bounds one trim transaction: a few hundred thousand rows.
	trimBatches = 200
)

// IndexConfig configures an Index.
type IndexConfig struct {
	// Streams says which streams are followed. Required.
	Streams func(stream string) bool
	// Correlations are the values indexed besides trace ids.
	Correlations Correlations
	// Skip names streams never followed whatever Streams says: the DLQ
	// stream (dead letters have their own index) and jetwatch's other
	// streams under configured names. jetwatch's JETWATCH_* streams and
	// KV_/OBJ_ streams are never followed.
	Skip []string
	// Retention is how long rows are kept after their message. Defaults
	// to 72 hours.
	Retention time.Duration
	// MaxRows caps the rows kept, the oldest batches going first. 0 (the
	// default) is no cap.
	MaxRows int64
	// Batch is how many messages go into one transaction at most.
	// Defaults to 1000.
	Batch int
	// Discover is how often the stream list is read for streams made or
	// deleted. Defaults to 10 seconds.
	Discover time.Duration
	// TrimEvery is how often old rows are deleted. Defaults to 1 minute.
	TrimEvery time.Duration
	// Now is the clock of the trim. Defaults to time.Now.
	Now func() time.Time
	// Registerer receives the index's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Index follows the journey streams into the journey index: for each
// message its metadata under each key it carries (trace id, correlation
// values). A message with no key is not indexed: no journey could find
// it. Its followers keep their positions with their rows, so a restart
// neither loses nor repeats a message.
type Index struct {
	js     jetstream.JetStream
	db     *store.DB
	cfg    IndexConfig
	logger *slog.Logger

	indexed    *prometheus.CounterVec
	trimmed    prometheus.Counter
	tapDropped prometheus.Counter

	mu        sync.Mutex
	followers map[string]stopper
	ctx       context.Context
	stop      context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once
}

// batch is a batch of messages turned into rows, with the sequence of
// its last message (0 for an empty batch).
type batch struct {
	entries []store.JourneyEntry
	last    uint64
}

// NewIndex returns an index of cfg.Streams on js into db.
func NewIndex(js jetstream.JetStream, db *store.DB, cfg IndexConfig) (*Index, error) {
	if cfg.Streams == nil {
		return nil, errors.New("journey index: Streams is required")
	}
	if cfg.Retention < 0 || cfg.MaxRows < 0 || cfg.Batch < 0 || cfg.Discover < 0 || cfg.TrimEvery < 0 {
		return nil, errors.New("journey index: Retention, MaxRows, Batch, Discover and TrimEvery must not be negative")
	}
	cfg.Retention = cmp.Or(cfg.Retention, DefaultRetention)
	cfg.Batch = cmp.Or(cfg.Batch, defaultBatch)
	cfg.Discover = cmp.Or(cfg.Discover, defaultDiscover)
	cfg.TrimEvery = cmp.Or(cfg.TrimEvery, defaultTrimEvery)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	ix := &Index{js: js, db: db, cfg: cfg, logger: cfg.Logger.With("component", "journey-index"),
		followers: map[string]stopper{},
		indexed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_journey_messages_indexed_total",
			Help: "Messages of journey streams indexed (those carrying a trace id or correlation value), by stream.",
		}, []string{"stream"}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jetwatch_journey_rows_trimmed_total",
			Help: "Journey index rows deleted by retention (--journey-retention, --journey-max-rows).",
		}),
		tapDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jetwatch_journey_messages_dropped_total",
			Help: "Messages of work-queue journey streams (followed live from their subjects) dropped because storing fell behind.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{ix.indexed, ix.trimmed, ix.tapDropped} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register journey metrics: %w", err)
			}
		}
	}
	return ix, nil
}

// follows says whether stream is one the index follows.
func (ix *Index) follows(stream string) bool {
	if store.OwnStreamName(stream) || strings.HasPrefix(stream, "KV_") || strings.HasPrefix(stream, "OBJ_") ||
		slices.Contains(ix.cfg.Skip, stream) {
		return false
	}
	return ix.cfg.Streams(stream)
}

// Start follows the matching streams in the background, picking up
// streams made later and dropping deleted ones, and trims old rows, until
// ctx ends or Stop.
func (ix *Index) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	ix.mu.Lock()
	ix.ctx, ix.stop, ix.done = ctx, cancel, make(chan struct{})
	ix.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { ix.every(ctx, ix.cfg.Discover, ix.discover) })
	wg.Go(func() { ix.every(ctx, ix.cfg.TrimEvery, ix.trimLogged) })
	go func() {
		wg.Wait()
		ix.mu.Lock()
		fs := ix.followers
		ix.followers = map[string]stopper{}
		ix.mu.Unlock()
		for _, f := range fs {
			f.Stop()
		}
		close(ix.done)
	}()
	return nil
}

// Stop stops following after the batches in hand. Safe to call twice.
func (ix *Index) Stop() {
	ix.stopOnce.Do(func() {
		if ix.stop != nil {
			ix.stop()
			<-ix.done
		}
	})
}

// every runs fn at once and then every d until ctx ends.
func (ix *Index) every(ctx context.Context, d time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Followed lists the streams followed now.
func (ix *Index) Followed() []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]string, 0, len(ix.followers))
	for s := range ix.followers {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// discover starts following matching streams not followed yet, and stops
// following streams that are gone (forgetting their position: a stream
// made again under the name starts at sequence 1).
func (ix *Index) discover(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := ix.js.StreamNames(lctx)
	present := map[string]bool{}
	for n := range names.Name() {
		present[n] = true
	}
	if err := names.Err(); err != nil {
		// A partial list must not stop followers of streams left out.
		if ctx.Err() == nil {
			ix.logger.Warn("listing streams for journeys failed; trying again", "err", err, "retry_in", ix.cfg.Discover)
		}
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.ctx == nil || ix.ctx.Err() != nil {
		return
	}
	for name := range present {
		if _, ok := ix.followers[name]; ok || !ix.follows(name) {
			continue
		}
		f, err := ix.follow(lctx, name)
		if err != nil {
			ix.logger.Error("cannot follow stream for journeys; trying again", "stream", name, "err", err, "retry_in", ix.cfg.Discover)
			continue
		}
		ix.followers[name] = f
	}
	for name, f := range ix.followers {
		if present[name] {
			continue
		}
		f.Stop()
		delete(ix.followers, name)
		if err := ix.db.ForgetPosition(ctx, positionPrefix+name); err != nil {
			ix.logger.Warn("forgetting the journey position of a deleted stream failed", "stream", name, "err", err)
		}
		ix.logger.Info("stream deleted; no longer following it for journeys (its rows stay until retention)", "stream", name)
	}
}

// stopper is a running follower of a stream.
type stopper interface{ Stop() }

// follow starts following stream: from its stored position with an
// ordered consumer, or, for a WorkQueue stream, which no reader may read
// without consuming it, live from its subjects (see tap).
func (ix *Index) follow(ctx context.Context, name string) (stopper, error) {
	st, err := ix.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	if cfg := st.CachedInfo().Config; cfg.Retention == jetstream.WorkQueuePolicy {
		t, err := ix.newTap(ix.ctx, name, cfg.Subjects)
		if err != nil {
			return nil, err
		}
		ix.logger.Info("following work-queue stream for journeys live from its subjects (messages published while jetwatch is down are not indexed)",
			"stream", name, "subjects", cfg.Subjects)
		return t, nil
	}
	f, err := ix.newFollower(name)
	if err != nil {
		return nil, err
	}
	f.Start(ix.ctx)
	ix.logger.Info("following stream for journeys", "stream", name)
	return f, nil
}

func (ix *Index) newFollower(stream string) (*streamreader.Follower[batch], error) {
	key := positionPrefix + stream
	return streamreader.NewFollower(ix.js, streamreader.FollowerConfig[batch]{
		Stream: stream, Batch: ix.cfg.Batch,
		Position: func(ctx context.Context) (uint64, error) { return ix.db.Position(ctx, key) },
		Prepare:  ix.prepare,
		Handle: func(ctx context.Context, b batch) (bool, error) {
			return false, ix.store(ctx, stream, b)
		},
		What: "indexing journeys of stream " + stream, Logger: ix.logger,
	})
}

// prepare turns messages into rows on the reading goroutine.
func (ix *Index) prepare(msgs []jetstream.Msg) (batch, error) {
	var b batch
	if len(msgs) == 0 {
		return b, nil
	}
	b.entries = make([]store.JourneyEntry, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return batch{}, fmt.Errorf("journey message metadata: %w", err)
		}
		b.last = max(b.last, meta.Sequence.Stream)
		b.entries = ix.entries(b.entries, meta.Stream, meta.Sequence.Stream, m.Subject(), meta.Timestamp, m.Headers(), m.Data())
	}
	return b, nil
}

// entries appends the rows of one message: one per correlation value it
// carries, each with its trace id, or one with the trace id alone; none
// when it carries no key.
func (ix *Index) entries(out []store.JourneyEntry, stream string, seq uint64, subject string, at time.Time,
	h nats.Header, data []byte) []store.JourneyEntry {
	keys := ix.cfg.Correlations.Keys(h, data)
	if len(keys) == 0 {
		return out
	}
	e := store.JourneyEntry{Stream: stream, Seq: seq, Subject: subject, At: at, Size: len(data)}
	for _, k := range keys {
		if k.Name == store.JourneyTraceName {
			e.TraceID = k.Value
		}
	}
	correlated := false
	for _, k := range keys {
		if k.Name != store.JourneyTraceName {
			e.Name, e.Key, correlated = k.Name, k.Value, true
			out = append(out, e)
		}
	}
	if !correlated {
		out = append(out, e)
	}
	return out
}

// store stores a batch and the position after it.
func (ix *Index) store(ctx context.Context, stream string, b batch) error {
	if b.last == 0 {
		return nil
	}
	if err := ix.db.InsertJourneyEntries(ctx, positionPrefix+stream, b.last, b.entries); err != nil {
		return err
	}
	if n := distinctMessages(b.entries); n > 0 {
		ix.indexed.WithLabelValues(stream).Add(float64(n))
	}
	return nil
}

// distinctMessages counts the messages of entries, which come grouped by
// message.
func distinctMessages(es []store.JourneyEntry) int {
	n := 0
	for i := range es {
		if i == 0 || es[i].Seq != es[i-1].Seq {
			n++
		}
	}
	return n
}

// CatchUp indexes each matching stream until the index holds everything
// it held when CatchUp was called; work queues, followed live, are left
// out. Used by benchmarks and tests.
func (ix *Index) CatchUp(ctx context.Context) error {
	names := ix.js.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		if ix.follows(n) {
			streams = append(streams, n)
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	for _, name := range streams {
		s, err := ix.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if s.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
			continue // followed live only: there is nothing to catch up on
		}
		target := s.CachedInfo().State.LastSeq
		pos, err := ix.db.Position(ctx, positionPrefix+name)
		if err != nil {
			return err
		}
		if pos >= target {
			continue
		}
		err = streamreader.RunPrepared(ctx, ix.js, name, pos+1, ix.cfg.Batch, ix.prepare, func(ctx context.Context, b batch) (bool, error) {
			if err := ix.store(ctx, name, b); err != nil {
				return false, err
			}
			return b.last >= target, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Trim deletes the rows past retention and over the row cap, a bounded
// number of batches per transaction, and says how many rows went.
func (ix *Index) Trim(ctx context.Context) (int64, error) {
	var total int64
	for {
		t, err := ix.db.TrimJourneys(ctx, ix.cfg.Now().Add(-ix.cfg.Retention), ix.cfg.MaxRows, trimBatches)
		if err != nil {
			return total, err
		}
		total += t.Rows
		ix.trimmed.Add(float64(t.Rows))
		if t.Batches < trimBatches || ctx.Err() != nil {
			return total, nil
		}
	}
}

func (ix *Index) trimLogged(ctx context.Context) {
	n, err := ix.Trim(ctx)
	if err != nil && ctx.Err() == nil {
		ix.logger.Warn("trimming the journey index failed; trying again", "err", err, "retry_in", ix.cfg.TrimEvery)
		return
	}
	if n > 0 {
		ix.logger.Debug("journey index trimmed", "rows", n)
	}
}

// Reset forgets every stream's position (not the rows), so the next run
// indexes each stream from its start. Used by benchmarks.
func (ix *Index) Reset(ctx context.Context, streams ...string) error {
	for _, s := range streams {
		if err := ix.db.ForgetPosition(ctx, positionPrefix+s); err != nil {
			return err
		}
	}
	return nil
}
