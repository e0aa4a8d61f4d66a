package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenRejectsUnusableDataDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	_, err := Open(context.Background(), filepath.Join(file, "data"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "cannot be created")
}

func TestOpenTwiceKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, dir)
	require.NoError(t, err)
	require.NoError(t, db.SetMeta(ctx, "k", "v"))
	require.NoError(t, db.CheckWritable(ctx))
	require.NoError(t, db.Close())

	db, err = Open(ctx, dir)
	require.NoError(t, err)
	defer db.Close()
	v, err := db.Meta(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v", v)
	_, err = db.Meta(ctx, "missing")
	require.ErrorIs(t, err, ErrNotFound)
}

func sampleCycle(at time.Time, pending uint64) Cycle {
	return Cycle{
		At:              at,
		StreamsComplete: true,
		Streams: []Stream{{
			Name: "S", Messages: pending, Bytes: pending * 100, LastSeq: pending,
			Health: Health{Level: HealthOK}, SampledAt: at,
		}},
		Consumers: []Consumer{{
			Stream: "S", Name: "c", NumPending: pending, Health: Health{Level: HealthOK}, SampledAt: at,
			Delivered: SequencePair{ConsumerSeq: pending},
		}},
		ConsumersComplete: map[string]bool{"S": true},
	}
}

// databaseAtVersion opens a new database file with the schema as
// migration version left it, for a test of the migrations after it.
func databaseAtVersion(t *testing.T, version int) (*sql.DB, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	old, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	_, err = old.ExecContext(ctx, `CREATE TABLE schema_version (version INTEGER NOT NULL)`)
	require.NoError(t, err)
	for _, m := range migrations[:version] {
		_, err := old.ExecContext(ctx, m)
		require.NoError(t, err)
	}
	_, err = old.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, version)
	require.NoError(t, err)
	return old, path
}

func countRows(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.sql.QueryRow(query, args...).Scan(&n))
	return n
}

func TestCompactDownsamplesAndExpires(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

	// One raw sample every 10 s over the last 40 days, with a spike 3 days
	// ago that downsampling must keep.
	start := now.Add(-40 * 24 * time.Hour)
	spike := now.Add(-72 * time.Hour).Truncate(time.Hour).Add(20 * time.Second)
	// Written straight into the table in one transaction: SaveCycle per
	// sample would make this test take minutes under -race.
	tx, err := db.sql.Begin()
	require.NoError(t, err)
	ins, err := tx.Prepare(`INSERT INTO consumer_samples (res, ts, stream, first, consumers)
		VALUES (0, ?, 'S', '', json_object('c', json_array(?, 0, 0, 0, 0, 0)))`)
	require.NoError(t, err)
	n := 0
	for at := start; !at.After(now); at = at.Add(10 * time.Second) {
		pending := 5
		if at.Equal(spike) {
			pending = 900
		}
		_, err := ins.Exec(at.UnixMilli(), pending)
		require.NoError(t, err)
		require.NoError(t, recordSampleTime(ctx, tx, at.UnixMilli(), 0))
		n++
	}
	require.NoError(t, ins.Close())
	require.NoError(t, tx.Commit())
	require.Equal(t, n, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples`))

	r := Retention{Raw: 24 * time.Hour, FiveMinute: 7 * 24 * time.Hour, Hourly: 30 * 24 * time.Hour}
	res, err := db.Compact(ctx, now, r)
	require.NoError(t, err)
	require.Positive(t, res.Downsampled)
	require.Positive(t, res.Deleted)

	// Raw only within 24 h, five-minute buckets within 7 days, hourly up to
	// 30 days, nothing older.
	require.Zero(t, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE res = 0 AND ts < ?`, now.Add(-24*time.Hour).UnixMilli()))
	require.Zero(t, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE res = 300 AND ts < ?`, now.Add(-7*24*time.Hour-time.Hour).UnixMilli()))
	require.Zero(t, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE ts < ?`, now.Add(-30*24*time.Hour).UnixMilli()))
	require.Positive(t, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE res = 3600`))
	total := countRows(t, db, `SELECT COUNT(*) FROM consumer_samples`)
	// 24 h raw (8,641) + 6 days of 5-minute buckets (1,728) + 23 days hourly (552), about.
	require.Less(t, total, 11500, "history stays bounded")
	require.Greater(t, total, 10000)

	// The spike survives in the five-minute tier.
	hist, err := db.ConsumerHistory(ctx, "S", "c", spike.Add(-time.Hour), spike.Add(time.Hour), 24)
	require.NoError(t, err)
	var peak uint64
	for _, p := range hist {
		peak = max(peak, p.NumPending)
	}
	require.Equal(t, uint64(900), peak)

	// Compacting again changes nothing.
	res, err = db.Compact(ctx, now, r)
	require.NoError(t, err)
	require.Zero(t, res.Downsampled)
	require.Zero(t, res.Deleted)
	require.Equal(t, total, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples`))
}

func TestRetentionValidates(t *testing.T) {
	t.Parallel()
	_, err := Retention{Raw: 48 * time.Hour, FiveMinute: 24 * time.Hour}.WithDefaults()
	require.Error(t, err)
	r, err := Retention{}.WithDefaults()
	require.NoError(t, err)
	require.Equal(t, 24*time.Hour, r.Raw)
}

func TestSaveCycleKeepsConsumersOfIncompleteListing(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, db.SaveCycle(ctx, sampleCycle(t0, 1)))

	// The next cycle could not list the streams nor S's consumers: nothing
	// is removed.
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: t0.Add(time.Second)}))
	streams, err := db.Streams(ctx)
	require.NoError(t, err)
	require.Len(t, streams, 1)
	c, err := db.Consumer(ctx, "S", "c")
	require.NoError(t, err)
	require.Equal(t, uint64(1), c.NumPending)

	// A complete listing without S removes it and its consumers.
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: t0.Add(2 * time.Second), StreamsComplete: true}))
	_, err = db.Consumer(ctx, "S", "c")
	require.ErrorIs(t, err, ErrNotFound)
	counts, err := db.Counts(ctx, true)
	require.NoError(t, err)
	require.Zero(t, counts.Streams)
	require.Zero(t, counts.Consumers)
}

func TestSaveCycleKeepsWhatCouldNotBeRead(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: t0, StreamsComplete: true,
		Streams: []Stream{{Name: "S", Messages: 5, Health: Health{Level: HealthOK}, SampledAt: t0, Config: []byte(`{"name":"S"}`)}},
		Consumers: []Consumer{{Stream: "S", Name: "c", NumPending: 2, Health: Health{Level: HealthOK}, SampledAt: t0,
			Config: []byte(`{"durable_name":"c"}`)}},
	}))

	// The next cycle cannot read them: they stay, with their last numbers
	// and configs, and add no history.
	t1 := t0.Add(time.Second)
	unread := &Unread{Why: UnreadNoResponse, Detail: "no answer", ReadAt: &t0}
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: t1, StreamsComplete: true, ConsumersComplete: map[string]bool{"S": true},
		Streams: []Stream{{Name: "S", Messages: 5, Health: Health{Level: HealthCritical, Reasons: []string{"no response"}},
			SampledAt: t1, Unread: unread}},
		Consumers: []Consumer{{Stream: "S", Name: "c", NumPending: 2, Health: Health{Level: HealthCritical}, SampledAt: t1, Unread: unread}},
	}))
	st, err := db.Stream(ctx, "S")
	require.NoError(t, err)
	require.Equal(t, HealthCritical, st.Health.Level)
	require.Equal(t, UnreadNoResponse, st.Unread.Why)
	require.True(t, st.Unread.ReadAt.Equal(t0))
	require.Equal(t, uint64(5), st.Messages)
	require.JSONEq(t, `{"name":"S"}`, string(st.Config), "the config last read is kept")
	c, err := db.Consumer(ctx, "S", "c")
	require.NoError(t, err)
	require.NotNil(t, c.Unread)
	require.JSONEq(t, `{"durable_name":"c"}`, string(c.Config))
	hist, err := db.StreamHistory(ctx, "S", t0.Add(-time.Minute), t1.Add(time.Minute), 600)
	require.NoError(t, err)
	require.Len(t, hist, 1, "only what was read is history")
	chist, err := db.ConsumerHistory(ctx, "S", "c", t0.Add(-time.Minute), t1.Add(time.Minute), 600)
	require.NoError(t, err)
	require.Len(t, chist, 1)
}

func TestListsLeaveJetwatchsOwnOutUnlessAsked(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	at := time.Now().UTC()
	stalled := func(stream, name string, own bool) Consumer {
		return Consumer{Stream: stream, Name: name, NumPending: 10, Stalled: true, Own: own,
			Health: Health{Level: HealthWarning}, SampledAt: at}
	}
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: at, StreamsComplete: true,
		Streams: []Stream{
			{Name: "ORDERS", Messages: 3, Health: Health{Level: HealthWarning}, SampledAt: at},
			{Name: "JETWATCH_ADVISORIES", Messages: 100, Own: true, Health: Health{Level: HealthOK}, SampledAt: at},
			{Name: "DLQ", Messages: 7, Own: true, Health: Health{Level: HealthCritical}, SampledAt: at},
		},
		Consumers: []Consumer{
			stalled("ORDERS", "billing", false),
			stalled("ORDERS", "jetwatch-probe", true),
			stalled("DLQ", "reader_1", true),
		},
	}))
	counts, err := db.Counts(ctx, false)
	require.NoError(t, err)
	require.Equal(t, Counts{Streams: 1, Consumers: 1, Messages: 3, StreamsByHealth: map[string]int{HealthWarning: 1},
		ConsumersStalled: 1, OwnStreams: 2}, counts)
	counts, err = db.Counts(ctx, true)
	require.NoError(t, err)
	require.Equal(t, Counts{Streams: 3, Consumers: 3, Messages: 110,
		StreamsByHealth: map[string]int{HealthWarning: 1, HealthOK: 1, HealthCritical: 1}, ConsumersStalled: 3, OwnStreams: 2}, counts)

	for _, own := range []bool{false, true} {
		lagging, err := db.TopLagging(ctx, 10, own)
		require.NoError(t, err)
		st, err := db.Stalled(ctx, own)
		require.NoError(t, err)
		want := 1
		if own {
			want = 3
		}
		require.Len(t, lagging, want, "own=%v", own)
		require.Len(t, st, want, "own=%v", own)
		if !own {
			require.Equal(t, "billing", lagging[0].Name)
			require.Equal(t, "billing", st[0].Name)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"orders.created", "orders.created", true},
		{"orders.*", "orders.created", true},
		{"orders.*", "orders.created.eu", false},
		{"orders.>", "orders.created.eu", true},
		{"orders.>", "orders", false},
		{"*.created", "orders.created", true},
		{">", "a", true},
		{"orders", "orders.created", false},
	} {
		require.Equal(t, c.want, SubjectMatches(c.pattern, c.subject), "%s vs %s", c.pattern, c.subject)
	}
	db := openTestDB(t)
	var ok bool
	require.NoError(t, db.sql.QueryRow(`SELECT subject_matches('orders.>', 'orders.a.b')`).Scan(&ok))
	require.True(t, ok)
}

func TestSearchTermsIn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q, text string
		want    bool
	}{
		{"declined", "orders.paid card declined", true},
		{"DECLINED", "Card Declined", true},
		{"card decl", "orders.paid card declined", true},     // the last term is a prefix
		{"car declined", "orders.paid card declined", false}, // the others are whole words
		{"4111111111111111", "orders.paid card declined", false},
		{"4111", "card 4111111111111111 declined", true},
		{"orders.paid", "orders.paid timeout", true}, // punctuation separates, as in the index
		{"paid orders", "orders.paid", true},
		{"", "anything", true},
		{"!!", "anything", true},
		{"x", "", false},
		{"é", "café", false}, // a word inside another is not a word
		{"café", "Café crème", true},
	} {
		require.Equal(t, c.want, SearchTermsIn(c.q, c.text), "%q in %q", c.q, c.text)
	}
	db := openTestDB(t)
	var ok bool
	require.NoError(t, db.sql.QueryRow(`SELECT search_terms_in('card decl', 'orders.paid' || ' ' || 'card declined')`).Scan(&ok))
	require.True(t, ok)
}

func TestMigrationNineKeepsDeadLettersWithoutTheirMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A database as version 8 left it, with a dead letter in it.
	old, path := databaseAtVersion(t, 8)
	_, err := old.ExecContext(ctx, `INSERT INTO dead_letters (id, dlq_subject, stream, consumer, subject, stream_seq, reason, error,
		service, deliveries, failed_at, indexed_at, payload_available, unavailable_why, size, fingerprint, problems, headers, payload)
		VALUES (42, 'dlq.ORDERS.billing', 'ORDERS', 'billing', 'orders.created', 7, 'max_deliver', 'boom', '', 5, 1, 2, 1, '', 3,
		'boom', 'null', '{"A":["b"]}', x'010203')`)
	require.NoError(t, err)
	require.NoError(t, old.Close())

	db, err := OpenFile(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	var columns []string
	rows, err := db.SQLForTests().QueryContext(ctx, `SELECT name FROM pragma_table_info('dead_letters')`)
	require.NoError(t, err)
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		columns = append(columns, c)
	}
	require.NoError(t, rows.Err())
	require.NotContains(t, columns, "headers")
	require.NotContains(t, columns, "payload")
	var subject string
	var size int
	require.NoError(t, db.SQLForTests().QueryRowContext(ctx, `SELECT subject, size FROM dead_letters WHERE id = 42`).Scan(&subject, &size))
	require.Equal(t, "orders.created", subject)
	require.Equal(t, 3, size)
}
