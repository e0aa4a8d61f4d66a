package index

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/seriescap"
	"github.com/jetwatch/jetwatch/internal/streamreader"
	"github.com/jetwatch/jetwatch/store"
)

// Positions of the index's two readers in stream_positions.
const (
	positionKey        = "dlq"
	actionsPositionKey = "dlq-actions"
)

// maxIndexedText bounds the payload text put into full-text search.
const maxIndexedText = 64 << 10

// Config configures an Index.
type Config struct {
	// Stream is the DLQ stream. Defaults to DLQ.
	Stream string
	// ActionsStream records operators' actions. Defaults to
	// JETWATCH_DLQ_ACTIONS.
	ActionsStream string
	// Batch is how many dead letters go into one transaction at most.
	// Defaults to 1000.
	Batch int
	// StallAfter is how long the index may stay behind the DLQ stream
	// without storing anything before it counts as stalled: /readyz fails
	// and the dead-letters page says why. Defaults to 30 seconds.
	StallAfter time.Duration
	// LagEvery is how often the DLQ stream's last sequence is read to
	// work out the lag. Defaults to 5 seconds.
	LagEvery time.Duration
	// Keys, when set, gives the journey keys of a dead letter's original
	// message (its trace id and correlation values, see package journey),
	// stored with it so a journey finds it. Defaults to none.
	Keys func(h nats.Header, payload []byte) []string
	// SearchText, when set, is what full-text search may see of a
	// payload (before it is cut to its first 64 KiB): jetwatch passes
	// the payload with --redact-fields masked, so that a search cannot
	// find, and so confirm, a value no page shows. Defaults to the
	// payload. SearchMasks names what it masks; it is stored with the
	// index, and a start with other masks over dead letters indexed
	// with the old ones says to reindex.
	SearchText  func(payload []byte) []byte
	SearchMasks string
	// Registerer receives the index's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Index reads the DLQ stream in order into SQLite. Its position is stored
// in the same transaction as the rows, so a restart neither loses nor
// repeats a dead letter, and an empty database rebuilds from sequence 1.
type Index struct {
	js     jetstream.JetStream
	db     *store.DB
	cfg    Config
	logger *slog.Logger

	indexed *prometheus.CounterVec
	// series are the stream/consumer pairs indexed counts by, at most
	// maxIndexedSeries.
	series      *seriescap.Pairs
	unindexable prometheus.Counter
	progress    progress
	// follower indexes the DLQ stream, actions applies the actions
	// stream, each from its stored position.
	follower *streamreader.Follower[[]indexRow]
	actions  *streamreader.Follower[[]jetstream.Msg]
	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewIndex returns an index of the DLQ stream on nc into db.
func New(nc *nats.Conn, db *store.DB, cfg Config) (*Index, error) {
	cfg.Stream = cmp.Or(cfg.Stream, "DLQ")
	cfg.ActionsStream = cmp.Or(cfg.ActionsStream, "JETWATCH_DLQ_ACTIONS")
	cfg.Batch = cmp.Or(cfg.Batch, 1000)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.StallAfter = cmp.Or(cfg.StallAfter, 30*time.Second)
	cfg.LagEvery = cmp.Or(cfg.LagEvery, 5*time.Second)
	if cfg.Batch < 0 || cfg.StallAfter < 0 || cfg.LagEvery < 0 {
		return nil, errors.New("dlq index: Batch, StallAfter and LagEvery must not be negative")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ix := &Index{js: js, db: db, cfg: cfg, logger: cfg.Logger.With("component", "dlq-index"),
		series: seriescap.New(maxIndexedSeries),
		indexed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_dead_letters_indexed_total",
			Help: "Dead letters indexed from the DLQ stream, by origin stream, consumer and reason.",
		}, []string{"stream", "consumer", "reason"}),
		unindexable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jetwatch_dead_letters_unindexable_total",
			Help: "Dead letters the index could not store and moved past (listed on the dead-letters page).",
		}),
	}
	// The lag is worked out when scraped, from the stream's last sequence
	// (read every LagEvery) and the position in the database, so it stays
	// true when indexing is stuck or not running at all.
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jetwatch_dead_letter_index_lag",
		Help: "DLQ stream messages not indexed yet: the stream's last sequence minus the last sequence indexed.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
		defer cancel()
		st := ix.observe(ctx, false)
		if !st.known {
			return math.NaN()
		}
		return float64(st.Lag)
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{ix.indexed, ix.unindexable, lag} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register index metrics: %w", err)
			}
		}
	}
	// Rows are worked out on the reading goroutine (newIndexRows) while
	// the previous batch is written.
	ix.follower, err = streamreader.NewFollower(js, streamreader.FollowerConfig[[]indexRow]{
		Stream: cfg.Stream, Batch: cfg.Batch, Position: ix.storedPosition, Prepare: ix.newIndexRows,
		Handle: func(ctx context.Context, rows []indexRow) (bool, error) {
			_, err := ix.storeRows(ctx, rows)
			return false, err
		},
		// The dead-letters page and /readyz say why the index stalls.
		Failed: func(err error) { ix.progress.failed(ix.failureWords(err)) },
		What:   "indexing dead letters", Logger: ix.logger,
	})
	if err != nil {
		return nil, err
	}
	ix.actions, err = streamreader.NewFollower(js, streamreader.FollowerConfig[[]jetstream.Msg]{
		Stream: cfg.ActionsStream, Batch: cfg.Batch,
		Position: func(ctx context.Context) (uint64, error) { return ix.position(ctx, actionsPositionKey) },
		Handle: func(ctx context.Context, batch []jetstream.Msg) (bool, error) {
			_, err := ix.applyActions(ctx, batch)
			return false, err
		},
		What: "applying dead-letter actions", Logger: ix.logger,
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// Position is the last DLQ sequence indexed.
func (ix *Index) Position(ctx context.Context) (uint64, error) {
	return ix.position(ctx, positionKey)
}

func (ix *Index) position(ctx context.Context, key string) (uint64, error) {
	return ix.db.Position(ctx, key)
}

// Start indexes in the background from the stored position, until ctx
// ends or Stop.
func (ix *Index) Start(ctx context.Context) error {
	ix.checkSearchMasks(ctx)
	ctx, cancel := context.WithCancel(ctx)
	ix.stop, ix.done = cancel, make(chan struct{})
	ix.progress.setRunning(true)
	var wg sync.WaitGroup
	wg.Go(func() { ix.watch(ctx) })
	wg.Go(func() { _ = ix.follower.Follow(ctx) }) // ends with ctx
	wg.Go(func() { _ = ix.actions.Follow(ctx) })
	go func() {
		wg.Wait()
		ix.progress.setRunning(false)
		close(ix.done)
	}()
	return nil
}

// Stop stops indexing after the batch in hand. Safe to call twice.
func (ix *Index) Stop() {
	ix.stopOnce.Do(func() {
		if ix.stop != nil {
			ix.stop()
			<-ix.done
		}
		ix.progress.setRunning(false)
	})
}

// CatchUp indexes until the index holds everything the DLQ stream held when
// CatchUp was called. Used by reindex, benchmarks and tests.
func (ix *Index) CatchUp(ctx context.Context) error {
	s, err := ix.js.Stream(ctx, ix.cfg.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", ix.cfg.Stream, err)
	}
	target := s.CachedInfo().State.LastSeq
	if pos, err := ix.Position(ctx); err != nil {
		return err
	} else if pos < target {
		if err := ix.run(ctx, func(pos uint64) bool { return pos >= target }); err != nil {
			return err
		}
	}
	a, err := ix.js.Stream(ctx, ix.cfg.ActionsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // no action was ever recorded
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", ix.cfg.ActionsStream, err)
	}
	actionsTarget := a.CachedInfo().State.LastSeq
	if pos, err := ix.position(ctx, actionsPositionKey); err != nil || pos >= actionsTarget {
		return err
	}
	return ix.runActions(ctx, func(pos uint64) bool { return pos >= actionsTarget })
}

// runActions applies recorded actions in order from the stored position
// until done says so, ctx ends or reading fails.
func (ix *Index) runActions(ctx context.Context, done func(pos uint64) bool) error {
	pos, err := ix.position(ctx, actionsPositionKey)
	if err != nil {
		return err
	}
	return streamreader.Run(ctx, ix.js, ix.cfg.ActionsStream, pos+1, ix.cfg.Batch, func(ctx context.Context, batch []jetstream.Msg) (bool, error) {
		pos, err := ix.applyActions(ctx, batch)
		return err == nil && done(pos), err
	})
}

// applyActions applies a batch of recorded actions (possibly empty) and
// returns the position after it.
func (ix *Index) applyActions(ctx context.Context, batch []jetstream.Msg) (uint64, error) {
	if len(batch) > 0 {
		if err := ix.ingestActions(ctx, batch); err != nil {
			return 0, err
		}
	}
	return ix.position(ctx, actionsPositionKey)
}

func (ix *Index) ingestActions(ctx context.Context, msgs []jetstream.Msg) error {
	var last uint64
	recs := make([]store.DeadLetterAction, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("action metadata: %w", err)
		}
		last = max(last, meta.Sequence.Stream)
		var a dlq.Action
		if err := json.Unmarshal(m.Data(), &a); err != nil || a.DeadLetter == 0 {
			ix.logger.Warn("malformed action skipped", "subject", m.Subject(), "seq", meta.Sequence.Stream, "err", err)
			continue
		}
		rec, err := a.Row(meta.Sequence.Stream)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	return ix.db.ApplyDeadLetterActions(ctx, recs, actionsPositionKey, last)
}

// run indexes from the stored position until done says so, ctx ends or
// reading fails.
func (ix *Index) run(ctx context.Context, done func(pos uint64) bool) error {
	pos, err := ix.storedPosition(ctx)
	if err != nil {
		return err
	}
	return streamreader.RunPrepared(ctx, ix.js, ix.cfg.Stream, pos+1, ix.cfg.Batch, ix.newIndexRows, func(ctx context.Context, rows []indexRow) (bool, error) {
		pos, err := ix.storeRows(ctx, rows)
		return err == nil && done(pos), err
	})
}

// storedPosition is Position, its failure a writeError.
func (ix *Index) storedPosition(ctx context.Context) (uint64, error) {
	pos, err := ix.Position(ctx)
	if err != nil {
		return 0, &writeError{err}
	}
	return pos, nil
}

// storeRows stores a batch of rows (possibly empty) and returns the
// position after it, noting the progress.
func (ix *Index) storeRows(ctx context.Context, rows []indexRow) (uint64, error) {
	if err := ix.store(ctx, rows); err != nil {
		return 0, &writeError{err}
	}
	// The batch is stored: its position is noted even when ctx ends
	// meanwhile, or the status would go on saying it is not indexed.
	pos, err := ix.storedPosition(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	ix.progress.stored(pos, time.Now())
	return pos, nil
}

// writeError is a failure to write the index, as opposed to reading the
// DLQ stream.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// failureWords says in the operator's words why indexing failed.
func (ix *Index) failureWords(err error) string {
	if w := store.Explain(err); w != "" {
		return w
	}
	var we *writeError
	switch {
	case errors.As(err, &we):
		return "writing to jetwatch's database failed (see the jetwatch logs)"
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Sprintf("the DLQ stream %s does not exist", ix.cfg.Stream)
	}
	return fmt.Sprintf("reading the DLQ stream %s failed (see the jetwatch logs)", ix.cfg.Stream)
}

// store stores a batch in one transaction. When SQLite refuses one of its
// rows, the batch is stored again one dead letter at a time, and the ones
// it refuses are recorded as unindexable and passed: one message never
// stops the index. A failure of the database as a whole (full, locked,
// read-only) is returned, to be retried: skipping then would lose rows
// that are fine.
func (ix *Index) store(ctx context.Context, rows []indexRow) error {
	err := ix.ingest(ctx, rows)
	if _, ok := store.RefusedRow(err); !ok {
		return err
	}
	for i := range rows {
		err := ix.ingest(ctx, rows[i:i+1])
		if err == nil {
			continue
		}
		re, ok := store.RefusedRow(err)
		if !ok || re.ID != rows[i].ID {
			return err
		}
		if err := ix.skip(ctx, &rows[i], re.Err); err != nil {
			return err
		}
	}
	return nil
}

// skip records a dead letter the index cannot store, with the reason, and
// moves the position past it.
func (ix *Index) skip(ctx context.Context, r *indexRow, cause error) error {
	reason := store.Explain(cause)
	if reason == "" {
		reason = "the index refused it"
	}
	skipped, err := ix.db.SkipDeadLetter(ctx, positionKey, store.UnindexableDeadLetter{
		ID: r.ID, DLQSubject: shownSubject(r.DLQSubject), Reason: reason, At: time.Now()})
	if err != nil {
		return err
	}
	if skipped {
		ix.unindexable.Inc()
		ix.logger.Warn("a dead letter could not be indexed; the index moved past it (listed on the dead-letters page)",
			"dlq_seq", r.ID, "subject", shownSubject(r.DLQSubject), "reason", reason, "err", cause)
	}
	return nil
}

// shownSubject is a DLQ subject as an unindexable row shows it: the
// message keeps it exactly, the page needs only a readable start.
func shownSubject(s string) string {
	return deadletter.HeaderValue(strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD"), natsname.MaxSubjectLen)
}

// Reset forgets everything indexed, so the next run rebuilds from the
// start of the DLQ stream.
func (ix *Index) Reset(ctx context.Context) error {
	if err := ix.db.ResetDeadLetters(ctx, positionKey, actionsPositionKey); err != nil {
		return err
	}
	// What is indexed from now on is masked as configured now.
	return ix.db.SetMeta(ctx, searchMasksKey, ix.cfg.SearchMasks)
}

// searchMasksKey names, in the meta table, what full-text search masked
// when the dead letters it holds were indexed (Config.SearchMasks); no
// such row, nothing.
const searchMasksKey = "dead_letter_search_masks"

// checkSearchMasks records the search masks of an empty index, and warns
// when dead letters were indexed with masks other than the configured
// ones: until a reindex, search still finds what the old masks let
// through. It never stops the index: search works either way.
func (ix *Index) checkSearchMasks(ctx context.Context) {
	stored, err := ix.db.Meta(ctx, searchMasksKey)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		ix.logger.WarnContext(ctx, "could not read which fields full-text search masks", "err", err)
		return
	}
	if stored == ix.cfg.SearchMasks {
		return
	}
	n, err := ix.db.CountDeadLetters(ctx, store.DeadLetterFilter{})
	if err != nil {
		ix.logger.WarnContext(ctx, "could not read which fields full-text search masks", "err", err)
		return
	}
	if n == 0 {
		if err := ix.db.SetMeta(ctx, searchMasksKey, ix.cfg.SearchMasks); err != nil {
			ix.logger.WarnContext(ctx, "could not record which fields full-text search masks", "err", err)
		}
		return
	}
	ix.logger.WarnContext(ctx, "full-text search still holds dead letters indexed with other masked fields: "+
		"until `jetwatch reindex`, a search may find values --redact-fields now masks (or miss ones it no longer does)",
		"indexed_with", cmp.Or(stored, "(none)"), "configured", cmp.Or(ix.cfg.SearchMasks, "(none)"), "dead_letters", n)
}

// ingest stores a batch and the new position in one transaction.
func (ix *Index) ingest(ctx context.Context, rows []indexRow) error {
	if len(rows) == 0 {
		return nil
	}
	stored := make([]store.DeadLetterRow, len(rows))
	for i := range rows {
		stored[i] = rows[i].DeadLetterRow
	}
	stored, err := ix.db.InsertDeadLetters(ctx, positionKey, stored)
	if err != nil {
		return err
	}
	type counted struct{ stream, consumer, reason string }
	counts := map[counted]int{}
	for i := range stored {
		counts[counted{stored[i].Stream, stored[i].Consumer, stored[i].Reason}]++
	}
	for k, n := range counts {
		stream, consumer := ix.series.Names(k.stream, k.consumer)
		ix.indexed.WithLabelValues(stream, consumer, k.reason).Add(float64(n))
	}
	return nil
}

// maxIndexedSeries caps the stream/consumer pairs dead letters are
// counted by: the names are whatever the services that dead-letter put
// in the envelope, and one that puts a new one in each would otherwise
// add a series to /metrics with each dead letter.
const maxIndexedSeries = 10_000

// indexRow is a dead letter ready to be stored, with the envelope it was
// worked out from.
type indexRow struct {
	store.DeadLetterRow
	env dlq.Envelope
}

// newIndexRows works out the rows of a batch of DLQ messages.
func (ix *Index) newIndexRows(msgs []jetstream.Msg) ([]indexRow, error) {
	rows := make([]indexRow, len(msgs))
	for i, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("dead letter metadata: %w", err)
		}
		rows[i] = newIndexRow(meta.Sequence.Stream, m.Subject(), m.Headers(), meta.Timestamp, m.Data())
		if ix.cfg.Keys != nil {
			rows[i].Keys = ix.cfg.Keys(m.Headers(), m.Data())
		}
		if ix.cfg.SearchText != nil && rows[i].SearchText != "" {
			rows[i].SearchText = searchText(ix.cfg.SearchText(m.Data()))
		}
	}
	return rows, nil
}

// newIndexRow works out the row of the DLQ message seq. Whatever the
// message holds, the row fits the index (dlq.Decode sees to the envelope); the
// DLQ subject is kept exactly, as reads check the message by it.
func newIndexRow(seq uint64, dlqSubject string, h nats.Header, published time.Time, data []byte) indexRow {
	env := dlq.Decode(dlqSubject, h, published)
	problems := "null"
	if env.Problems != nil {
		p, _ := json.Marshal(env.Problems)
		problems = string(p)
	}
	return indexRow{env: env, DeadLetterRow: store.DeadLetterRow{ID: seq, DLQSubject: dlqSubject,
		Stream: env.Stream, Consumer: env.Consumer, Subject: env.Subject, StreamSeq: env.Sequence,
		Reason: env.Reason, Error: env.Error, Service: env.Service, Deliveries: env.Deliveries, FailedAt: env.FailedAt,
		PayloadAvailable: env.PayloadUnavailable == "", UnavailableWhy: env.PayloadUnavailable,
		Size: len(data), Fingerprint: Fingerprint(env.Error), Problems: problems, SearchText: searchText(data)}}
}

// searchText is the start of a payload (up to maxIndexedText bytes, cut at
// a character boundary) when it is UTF-8 text, and "" when it is binary.
func searchText(data []byte) string {
	if len(data) > maxIndexedText {
		data = data[:maxIndexedText]
		// Off with the character the cut went through, if it did.
		for k := 0; k < utf8.UTFMax-1 && !utf8.Valid(data); k++ {
			data = data[:len(data)-1]
		}
	}
	if !utf8.Valid(data) {
		return ""
	}
	return string(data)
}

// Fingerprint normalises an error text so that failures differing only in
// ids, numbers and quoted values group together: every word holding a digit
// becomes <n> and every quoted value <v>. One pass, no regular expressions:
// it runs for every dead letter indexed.
func Fingerprint(errText string) string {
	var b strings.Builder
	b.Grow(min(len(errText), 200))
	word := make([]byte, 0, 32)
	flush := func() {
		if len(word) == 0 {
			return
		}
		digit := false
		for _, c := range word {
			if c >= '0' && c <= '9' {
				digit = true
				break
			}
		}
		if digit {
			b.WriteString("<n>")
		} else {
			b.Write(word)
		}
		word = word[:0]
	}
	space := false
	for i := 0; i < len(errText) && b.Len() < 200; i++ {
		c := errText[i]
		switch {
		case c == '"' || c == '\'':
			flush()
			if j := strings.IndexByte(errText[i+1:], c); j >= 0 {
				b.WriteString("<v>")
				i += j + 1
				space = false
				continue
			}
			b.WriteByte(c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c >= 0x80:
			word = append(word, c)
		default:
			flush()
			b.WriteByte(c)
		}
		space = false
	}
	flush()
	return strings.TrimSpace(b.String())
}
