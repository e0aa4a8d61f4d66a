package index

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// indexBundle is a real NATS server with a DLQ stream and a real SQLite
// file, for indexes started and stopped by the test.
type indexBundle struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	db     *store.DB
	dbPath string
	ctx    context.Context
}

func setupIndex(t *testing.T) *indexBundle {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true},
		{Name: "JETWATCH_DLQ_ACTIONS", Subjects: []string{dlq.ActionSubjectPrefix + ">"}},
	} {
		_, err := js.CreateStream(ctx, sc)
		require.NoError(t, err)
	}
	path := filepath.Join(t.TempDir(), "jetwatch.db")
	db, err := store.OpenFile(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return &indexBundle{nc: nc, js: js, db: db, dbPath: path, ctx: ctx}
}

// start starts an index with its own metrics registry; the test's cleanup
// stops it.
func (b *indexBundle) start(t *testing.T, cfg Config) (*Index, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	ix, err := New(b.nc, b.db, cfg)
	require.NoError(t, err)
	require.NoError(t, ix.Start(b.ctx))
	t.Cleanup(ix.Stop)
	return ix, reg
}

func (b *indexBundle) publish(t *testing.T, m *nats.Msg) uint64 {
	t.Helper()
	ack, err := b.js.PublishMsg(b.ctx, m)
	require.NoError(t, err)
	return ack.Sequence
}

// good publishes a well-formed dead letter.
func (b *indexBundle) good(t *testing.T, errText string) uint64 {
	t.Helper()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":"ord-1"}`)
	dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: 3, Consumer: "billing", Deliveries: 5,
		Reason: dlq.ReasonMaxDeliver, Error: errText, FailedAt: time.Now()}.Apply(m.Header)
	return b.publish(t, m)
}

// raw publishes a dead letter with exactly these headers.
func (b *indexBundle) raw(t *testing.T, headers map[string]string) uint64 {
	t.Helper()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte("poison")
	for k, v := range headers {
		m.Header[k] = []string{v}
	}
	return b.publish(t, m)
}

// waitIndexed polls until the index's position reaches seq.
func (b *indexBundle) waitIndexed(t *testing.T, seq uint64) {
	t.Helper()
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		pos, err := b.db.Position(b.ctx, positionKey)
		if err != nil {
			return err
		}
		if pos < seq {
			return fmt.Errorf("indexed up to %d, waiting for %d", pos, seq)
		}
		return nil
	})
}

func (b *indexBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.SQLForTests().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM `+table).Scan(&n))
	return n
}

// metric is the value of a gauge or counter without labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestPoisonDeadLettersAreIndexedClampedAndTheNextOneToo(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	ix, _ := b.start(t, Config{Batch: 4})
	q := query.New(b.db, b.js, "DLQ")
	big := strings.Repeat("x", 60<<10)
	poisons := map[string]map[string]string{
		"max uint64":  {dlq.HeaderStream: "ORDERS", dlq.HeaderDeliveries: "18446744073709551615", dlq.HeaderSequence: "18446744073709551615"},
		"past uint64": {dlq.HeaderStream: "ORDERS", dlq.HeaderSequence: "99999999999999999999999", dlq.HeaderDeliveries: "-1"},
		"year 99999":  {dlq.HeaderStream: "ORDERS", dlq.HeaderFailedAt: "99999-01-01T00:00:00Z"},
		"year 10000":  {dlq.HeaderStream: "ORDERS", dlq.HeaderFailedAt: "9999-12-31T23:59:59-23:59"},
		"year -1":     {dlq.HeaderStream: "ORDERS", dlq.HeaderFailedAt: "0000-01-01T00:00:00+23:59"},
		"before 1970": {dlq.HeaderStream: "ORDERS", dlq.HeaderFailedAt: "1969-12-31T23:59:59Z"},
		"invalid utf-8": {dlq.HeaderStream: "OR\xffDERS", dlq.HeaderConsumer: "bil\xfeling", dlq.HeaderSubject: "orders.\xff",
			dlq.HeaderReason: "\xff", dlq.HeaderError: "bad \xff\xfe byte", dlq.HeaderService: "svc\xc3", dlq.HeaderPayloadUnavailable: "gone \xff"},
		"nul":           {dlq.HeaderStream: "OR\x00DERS", dlq.HeaderError: "a\x00b", dlq.HeaderSubject: "orders.\x00"},
		"60 KB error":   {dlq.HeaderStream: "ORDERS", dlq.HeaderError: big},
		"60 KB stream":  {dlq.HeaderStream: big},
		"60 KB subject": {dlq.HeaderStream: "ORDERS", dlq.HeaderSubject: "orders." + big},
		"60 KB other":   {dlq.HeaderStream: "ORDERS", "X-Big": big},
	}
	ids := map[string]uint64{}
	for name, h := range poisons {
		ids[name] = b.raw(t, h)
	}
	next := b.good(t, "card declined")
	b.waitIndexed(t, next)

	// The good one after the poison is there, as it was sent.
	d, err := q.Get(b.ctx, next)
	require.NoError(t, err)
	require.Equal(t, "card declined", d.Error)
	require.Empty(t, d.Problems)

	// Every poison is indexed, within what the index and JSON take, with
	// a note saying what was changed.
	for name, id := range ids {
		d, err := q.Get(b.ctx, id)
		require.NoError(t, err, name)
		_, err = json.Marshal(d)
		require.NoError(t, err, "%s: the API can answer it", name)
		require.LessOrEqual(t, d.FailedAt.Year(), 9999, name)
		require.GreaterOrEqual(t, d.FailedAt.Year(), 1970, name)
		for _, s := range []string{d.Stream, d.Consumer, d.Subject, d.Error, d.Service, d.UnavailableWhy} {
			require.True(t, utf8.ValidString(s), "%s: %q", name, s)
			require.NotContains(t, s, "\x00", name)
			require.LessOrEqual(t, len(s), deadletter.MaxErrorLen+len("…"), name)
		}
		if name != "60 KB other" {
			require.NotEmpty(t, d.Problems, name)
		}
	}
	problems := func(name string) string {
		d, err := q.Get(b.ctx, ids[name])
		require.NoError(t, err)
		return strings.Join(d.Problems, "\n")
	}
	d, err = q.Get(b.ctx, ids["max uint64"])
	require.NoError(t, err)
	require.EqualValues(t, math.MaxInt64, d.Deliveries)
	require.EqualValues(t, math.MaxInt64, d.StreamSeq)
	require.Contains(t, problems("max uint64"), `Dlq-Deliveries "18446744073709551615" is larger than jetwatch can store; kept as 9223372036854775807`)
	require.Contains(t, problems("past uint64"), `Dlq-Sequence "99999999999999999999999" is larger than jetwatch can store`)
	require.Contains(t, problems("year 99999"), "is not an RFC 3339 time")
	for _, name := range []string{"year 10000", "year -1", "before 1970"} {
		require.Contains(t, problems(name), "outside the years 1970 to 9999; the time it reached the DLQ is shown", name)
		d, err := q.Get(b.ctx, ids[name])
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), d.FailedAt, time.Minute, "%s: the time it reached the DLQ", name)
	}
	d, err = q.Get(b.ctx, ids["invalid utf-8"])
	require.NoError(t, err)
	require.Equal(t, "OR\uFFFDDERS", d.Stream)
	require.Empty(t, d.Subject, "a subject that cannot be published to is not mended into another one")
	require.Contains(t, problems("invalid utf-8"), "Dlq-Error is not valid UTF-8")
	d, err = q.Get(b.ctx, ids["nul"])
	require.NoError(t, err)
	require.Equal(t, "a\uFFFDb", d.Error)
	require.Contains(t, problems("nul"), "Dlq-Error holds NUL bytes")
	d, err = q.Get(b.ctx, ids["60 KB error"])
	require.NoError(t, err)
	require.Len(t, d.Error, deadletter.MaxErrorLen+len("…"))
	require.Contains(t, problems("60 KB error"), "Dlq-Error is 61440 bytes long: the index keeps the first 4096 (the DLQ stream keeps all of it)")
	require.Equal(t, []string{big}, d.Headers[dlq.HeaderError], "the detail still shows the whole header from the DLQ stream")
	d, err = q.Get(b.ctx, ids["60 KB stream"])
	require.NoError(t, err)
	require.Len(t, d.Stream, natsname.MaxNameLen+len("…"))
	d, err = q.Get(b.ctx, ids["60 KB subject"])
	require.NoError(t, err)
	require.Empty(t, d.Subject)
	require.Contains(t, problems("60 KB subject"), "is not a subject a message can have")
	require.Equal(t, 1, count(t, q, store.DeadLetterFilter{Q: "declined"}), "full-text search still works")

	require.Zero(t, b.count(t, "dead_letters_unindexable"))
	require.Equal(t, int(next), b.count(t, "dead_letters"), "every message indexed once")

	// A restart neither repeats nor stalls: the next one is indexed too.
	ix.Stop()
	ix2, _ := b.start(t, Config{})
	after := b.good(t, "card expired")
	b.waitIndexed(t, after)
	require.Equal(t, int(after), b.count(t, "dead_letters"))
	st, err := ix2.Status(b.ctx)
	require.NoError(t, err)
	require.False(t, st.Stalled)
	require.Zero(t, st.Lag)
	require.Zero(t, st.Unindexable)
}

func count(t *testing.T, q *query.Queries, f store.DeadLetterFilter) int {
	t.Helper()
	n, err := q.Count(context.Background(), f)
	require.NoError(t, err)
	return n
}

// A dead letter SQLite refuses (here: its id is taken by a row the index
// should not hold, as a damaged index has) becomes an unindexable row with
// the reason, and the index moves past it without dropping its neighbours
// in the same batch.
func TestARowTheIndexRefusesBecomesUnindexableAndIsPassed(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	first := b.good(t, "before 1")
	b.good(t, "before 2")
	// The next message's id is taken already.
	poison := first + 2
	_, err := b.db.SQLForTests().ExecContext(b.ctx, `INSERT INTO dead_letters (id, dlq_subject, stream, consumer, subject, stream_seq,
		reason, error, service, deliveries, failed_at, indexed_at, payload_available, unavailable_why, size, fingerprint, problems)
		VALUES (?, 'dlq.X.y', 'X', 'y', 'x', 1, 'error', 'left over', '', 1, 0, 0, 1, '', 0, '', 'null')`, poison)
	require.NoError(t, err)
	require.Equal(t, poison, b.good(t, "refused"))
	b.good(t, "after 1")
	last := b.good(t, "after 2")

	// All five come in one batch: the batch fails, then goes one by one.
	ix, reg := b.start(t, Config{Batch: 100})
	b.waitIndexed(t, last)
	for _, text := range []string{"before 1", "before 2", "after 1", "after 2"} {
		var n int
		require.NoError(t, b.db.SQLForTests().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM dead_letters WHERE error = ?`, text).Scan(&n))
		require.Equal(t, 1, n, text)
	}
	st, err := ix.Status(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Unindexable)
	require.Len(t, st.Recent, 1)
	require.Equal(t, poison, st.Recent[0].ID)
	require.Equal(t, "dlq.ORDERS.billing", st.Recent[0].DLQSubject)
	require.Contains(t, st.Recent[0].Reason, "the index already holds a row with this id")
	require.NotContains(t, st.Recent[0].Reason, "dead_letters", "no SQL in what operators read")
	require.False(t, st.Stalled)
	require.Equal(t, 1.0, metric(t, reg, "jetwatch_dead_letters_unindexable_total"))

	// Restarted, the index does not try it again nor record it twice.
	ix.Stop()
	ix2, reg2 := b.start(t, Config{})
	next := b.good(t, "after restart")
	b.waitIndexed(t, next)
	require.Equal(t, 1, b.count(t, "dead_letters_unindexable"))
	require.Zero(t, metric(t, reg2, "jetwatch_dead_letters_unindexable_total"))

	// A rebuild (jetwatch reindex) starts over: the left-over row is gone,
	// so this time the dead letter is indexed.
	ix2.Stop()
	require.NoError(t, ix2.Reset(b.ctx))
	require.NoError(t, ix2.CatchUp(b.ctx))
	require.Zero(t, b.count(t, "dead_letters_unindexable"))
	var refused string
	require.NoError(t, b.db.SQLForTests().QueryRowContext(b.ctx, `SELECT error FROM dead_letters WHERE id = ?`, poison).Scan(&refused))
	require.Equal(t, "refused", refused)
}

// A database that fails as a whole (here: locked by another process) is
// retried, never skipped: the index stalls, says why, and catches up with
// nothing lost once the lock goes.
func TestALockedDatabaseStallsTheIndexWithoutSkipping(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	ix, reg := b.start(t, Config{StallAfter: 200 * time.Millisecond, LagEvery: 50 * time.Millisecond})
	first := b.good(t, "first")
	b.waitIndexed(t, first)

	other, err := store.OpenFile(b.ctx, b.dbPath)
	require.NoError(t, err)
	defer other.Close()
	lock, err := other.SQLForTests().BeginTx(b.ctx, nil) // immediate: takes the write lock
	require.NoError(t, err)
	_, err = lock.ExecContext(b.ctx, `INSERT INTO meta (key, value) VALUES ('lock', 'held')`)
	require.NoError(t, err)

	second := b.good(t, "second")
	natstest.CheckFor(t, 40*time.Second, 50*time.Millisecond, func() error {
		st, err := ix.Status(b.ctx)
		if err != nil {
			return err
		}
		if !st.Stalled || !strings.Contains(st.Why, "locked by another process") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	require.Equal(t, 1.0, metric(t, reg, "jetwatch_dead_letter_index_lag"))
	pos, err := b.db.Position(b.ctx, positionKey)
	require.NoError(t, err)
	require.Equal(t, first, pos, "nothing skipped while the database is locked")
	require.Zero(t, b.count(t, "dead_letters_unindexable"))

	require.NoError(t, lock.Rollback())
	b.waitIndexed(t, second)
	require.Equal(t, 2, b.count(t, "dead_letters"))
	require.Zero(t, b.count(t, "dead_letters_unindexable"))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st, err := ix.Status(b.ctx); err != nil || st.Stalled || st.Lag != 0 {
			return fmt.Errorf("status %+v, %v", st, err)
		}
		return nil
	})
}

// The lag is the DLQ stream's last sequence minus the last one indexed,
// whether the index runs or not.
func TestLagIsTheTrueDistanceWhenTheIndexIsStopped(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	cfg := Config{StallAfter: 300 * time.Millisecond, LagEvery: 20 * time.Millisecond}
	ix, reg := b.start(t, cfg)
	var last uint64
	for i := range 3 {
		last = b.good(t, fmt.Sprint("error ", i))
	}
	b.waitIndexed(t, last)
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if v := metric(t, reg, "jetwatch_dead_letter_index_lag"); v != 0 {
			return fmt.Errorf("lag %v", v)
		}
		return nil
	})

	ix.Stop()
	for i := range 5 {
		b.good(t, fmt.Sprint("while stopped ", i))
	}
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if v := metric(t, reg, "jetwatch_dead_letter_index_lag"); v != 5 {
			return fmt.Errorf("lag %v, want 5", v)
		}
		return nil
	})
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		st, err := ix.Status(b.ctx)
		if err != nil {
			return err
		}
		if !st.Stalled || st.Lag != 5 || st.Why != "indexing is not running" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	// Started again, it catches up and the stall ends.
	ix2, reg2 := b.start(t, cfg)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, err := ix2.Status(b.ctx)
		if err != nil {
			return err
		}
		if v := metric(t, reg2, "jetwatch_dead_letter_index_lag"); st.Stalled || st.Lag != 0 || v != 0 {
			return fmt.Errorf("status %+v, lag metric %v", st, v)
		}
		return nil
	})
}

// A DLQ stream recreated below the index's position is a stall at once:
// the index would wait for sequences the new stream reaches only later.
func TestARecreatedDLQStreamIsAStall(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	ix, _ := b.start(t, Config{LagEvery: 20 * time.Millisecond})
	var last uint64
	for i := range 3 {
		last = b.good(t, fmt.Sprint("error ", i))
	}
	b.waitIndexed(t, last)
	require.NoError(t, b.js.DeleteStream(b.ctx, "DLQ"))
	_, err := b.js.CreateStream(b.ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}})
	require.NoError(t, err)
	b.good(t, "in the new stream")
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, err := ix.Status(b.ctx)
		if err != nil {
			return err
		}
		if !st.Stalled || st.Lag != 1 || !strings.Contains(st.Why, "was the stream recreated? `jetwatch reindex` rebuilds the index") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

func TestNewIndexRefusesNegativeSettings(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	_, err := New(b.nc, b.db, Config{StallAfter: -time.Second})
	require.ErrorContains(t, err, "must not be negative")
}

// A full disk is retried, never skipped: the dead letters that do not fit
// now are indexed once there is room. (SQLite's max_page_count makes the
// database full for real.)
func TestAFullDiskStallsTheIndexWithoutSkipping(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	// One connection, so the limit below holds for every statement.
	b.db.SQLForTests().SetMaxOpenConns(1)
	ix, _ := b.start(t, Config{StallAfter: 200 * time.Millisecond, LagEvery: 50 * time.Millisecond})
	first := b.good(t, "first")
	b.waitIndexed(t, first)
	_, err := b.db.SQLForTests().ExecContext(b.ctx, `PRAGMA max_page_count = 1`) // as small as the file is now
	require.NoError(t, err)

	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	var words strings.Builder
	for i := range 10_000 {
		fmt.Fprintf(&words, "w%d ", i) // 60 KB of distinct words: many pages of full-text index
	}
	m.Data = []byte(words.String())
	dlq.Envelope{Stream: "ORDERS", Reason: dlq.ReasonError, Error: "big"}.Apply(m.Header)
	big := b.publish(t, m)
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		st, err := ix.Status(b.ctx)
		if err != nil {
			return err
		}
		if !st.Stalled || !strings.Contains(st.Why, "the disk holding jetwatch's database is full") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	pos, err := b.db.Position(b.ctx, positionKey)
	require.NoError(t, err)
	require.Equal(t, first, pos, "nothing skipped while the disk is full")
	require.Zero(t, b.count(t, "dead_letters_unindexable"))

	_, err = b.db.SQLForTests().ExecContext(b.ctx, `PRAGMA max_page_count = 1073741823`)
	require.NoError(t, err)
	b.waitIndexed(t, big)
	require.Zero(t, b.count(t, "dead_letters_unindexable"))
	require.Equal(t, 1, count(t, query.New(b.db, b.js, "DLQ"), store.DeadLetterFilter{Q: "big"}))
}

// The index lives as long as the context it was started with: when that
// ends, it stops reading, leaves no consumer on the DLQ or actions stream,
// and says it is not running.
func TestTheIndexStopsWithItsContext(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	ix, err := New(b.nc, b.db, Config{StallAfter: 100 * time.Millisecond, LagEvery: 20 * time.Millisecond,
		Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(b.ctx)
	require.NoError(t, ix.Start(ctx))
	t.Cleanup(ix.Stop)
	first := b.good(t, "first")
	b.waitIndexed(t, first)

	cancel()
	consumers := func(stream string) int {
		s, err := b.js.Stream(b.ctx, stream)
		require.NoError(t, err)
		return s.CachedInfo().State.Consumers
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n, m := consumers("DLQ"), consumers("JETWATCH_DLQ_ACTIONS"); n+m != 0 {
			return fmt.Errorf("%d consumers on DLQ, %d on the actions stream", n, m)
		}
		return nil
	})
	b.good(t, "after the end")
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, err := ix.Status(b.ctx)
		if err != nil {
			return err
		}
		if !st.Stalled || st.Lag != 1 || st.Why != "indexing is not running" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	pos, err := b.db.Position(b.ctx, positionKey)
	require.NoError(t, err)
	require.Equal(t, first, pos)
}
