package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// queryPlan is SQLite's plan for query, one step a line.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.sql.Query(`EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notUsed, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "\n")
}

// TestHistoryIsReadByTime: samples are stored in time order; a stream's
// or consumer's history reads its own samples, one key lookup per sample
// time, and no other stream's or consumer's.
func TestHistoryIsReadByTime(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 6 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		c := sampleCycle(at, uint64(100+i))
		// Another stream and consumer sampled at the same times, with
		// other numbers: none of them may show in S's history.
		c.Streams = append(c.Streams, Stream{Name: "T", Messages: 7, LastSeq: 7, Health: Health{Level: HealthOK}, SampledAt: at})
		c.Consumers = append(c.Consumers,
			Consumer{Stream: "S", Name: "d", NumPending: uint64(i), Health: Health{Level: HealthOK}, SampledAt: at},
			Consumer{Stream: "T", Name: "c", NumPending: 9999, Health: Health{Level: HealthOK}, SampledAt: at})
		c.ConsumersComplete["T"] = true
		require.NoError(t, db.SaveCycle(ctx, c))
	}
	since, until := t0.Add(15*time.Second), t0.Add(time.Minute)

	hist, err := db.ConsumerHistory(ctx, "S", "c", since, until, 100)
	require.NoError(t, err)
	require.Len(t, hist, 4)
	for i, p := range hist {
		require.Equal(t, t0.Add(time.Duration(20+10*i)*time.Second), p.At)
		require.Equal(t, uint64(102+i), p.NumPending)
	}
	streamHist, err := db.StreamHistory(ctx, "S", since, until, 100)
	require.NoError(t, err)
	require.Len(t, streamHist, 4)
	for i, p := range streamHist {
		require.Equal(t, uint64(102+i), p.Messages)
	}
	lines, err := db.PendingSparklines(ctx, "S", since, until, 100)
	require.NoError(t, err)
	require.Equal(t, map[string][]uint64{"c": {102, 103, 104, 105}, "d": {2, 3, 4, 5}}, lines)

	// One lookup per sample time, never a scan of the samples.
	for _, q := range []struct {
		name, query, want string
	}{
		{"consumer", `SELECT s.consumers FROM sample_times t CROSS JOIN consumer_samples s
			ON s.res = t.res AND s.ts = t.ts AND s.stream = 'S' AND s.first = (
				SELECT MAX(x.first) FROM consumer_samples x
				WHERE x.res = t.res AND x.ts = t.ts AND x.stream = 'S' AND x.first <= 'c')
			WHERE t.ts >= 0 AND t.ts <= 1`,
			"SEARCH s USING PRIMARY KEY (res=? AND ts=? AND stream=? AND first=?)"},
		{"stream", `SELECT s.messages FROM sample_times t CROSS JOIN stream_samples s
			ON s.res = t.res AND s.ts = t.ts AND s.stream = 'S' WHERE t.ts >= 0 AND t.ts <= 1`,
			"SEARCH s USING PRIMARY KEY (res=? AND ts=? AND stream=?)"},
		{"sparklines", `SELECT s.consumers FROM sample_times t CROSS JOIN consumer_samples s
			ON s.res = t.res AND s.ts = t.ts AND s.stream = 'S' WHERE t.ts >= 0 AND t.ts <= 1`,
			"SEARCH s USING PRIMARY KEY (res=? AND ts=? AND stream=?)"},
	} {
		plan := queryPlan(t, db, q.query)
		require.Contains(t, plan, q.want, q.name)
		require.Contains(t, plan, "SEARCH t USING PRIMARY KEY (ts>? AND ts<?)", q.name)
	}
}

// TestCompactReadsARangeOfTimes: downsampling and expiry read and delete
// the samples older than their cutoff as a range, not by scanning every
// sample, and keep sample_times in step so history finds the buckets.
func TestCompactReadsARangeOfTimes(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, q := range []string{
		`SELECT stream, MAX(messages) FROM stream_samples WHERE res = 0 AND ts < 1 GROUP BY stream, ts / 300000`,
		`SELECT stream, MAX(consumers) FROM consumer_samples WHERE res = 0 AND ts < 1 GROUP BY stream, ts / 300000`,
		`SELECT ts, stream, consumers FROM consumer_samples WHERE res = 0 AND ts < 1 ORDER BY res, ts, stream, first`,
		`DELETE FROM consumer_samples WHERE res = 0 AND ts < 1`,
		`DELETE FROM consumer_samples WHERE res IN (0, 300, 3600) AND ts < 1`,
	} {
		plan := queryPlan(t, db, q)
		require.Contains(t, plan, "USING PRIMARY KEY (res=? AND ts<?)", q)
		require.NotContains(t, plan, "SCAN", q)
		if strings.Contains(q, "ORDER BY") {
			require.NotContains(t, plan, "TEMP B-TREE", "rows come in order, not sorted in memory: %s", q)
		}
	}
}

// TestMigrationFourteenKeepsHistory: history stored by the layout before
// samples were kept in time order is still there, and found, after it.
func TestMigrationFourteenKeepsHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old, path := databaseAtVersion(t, 13)
	var err error
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{t0, t0.Add(10 * time.Second), t0.Add(-time.Hour)} {
		_, err = old.ExecContext(ctx, `INSERT INTO stream_samples VALUES ('S', ?, ?, ?, 0, 1, ?, 0, 1)`,
			map[bool]int{true: 300, false: 0}[i == 2], at.UnixMilli(), 10+i, 10+i)
		require.NoError(t, err)
		_, err = old.ExecContext(ctx, `INSERT INTO consumer_samples VALUES ('S', 'c', ?, ?, ?, 0, 0, 0, 1, 1)`,
			map[bool]int{true: 300, false: 0}[i == 2], at.UnixMilli(), 20+i)
		require.NoError(t, err)
	}
	require.NoError(t, old.Close())

	db, err := OpenFile(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	hist, err := db.ConsumerHistory(ctx, "S", "c", t0.Add(-2*time.Hour), t0.Add(time.Minute), 1000)
	require.NoError(t, err)
	require.Len(t, hist, 3)
	require.Equal(t, []uint64{22, 20, 21}, []uint64{hist[0].NumPending, hist[1].NumPending, hist[2].NumPending})
	streamHist, err := db.StreamHistory(ctx, "S", t0.Add(-2*time.Hour), t0.Add(time.Minute), 1000)
	require.NoError(t, err)
	require.Len(t, streamHist, 3)
	require.Equal(t, uint64(12), streamHist[0].Messages)
	require.Equal(t, 3, countRows(t, db, `SELECT COUNT(*) FROM sample_times`))
}

// TestSaveCycleRemovesConsumersOnlyOfCompleteListings: a consumer not seen
// is removed when its stream's consumers were listed completely, and kept
// (with its last numbers) when they were not.
func TestSaveCycleRemovesConsumersOnlyOfCompleteListings(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cycle := func(at time.Time, consumers []Consumer, complete map[string]bool) Cycle {
		return Cycle{At: at, StreamsComplete: true, ConsumersComplete: complete, Consumers: consumers, Streams: []Stream{
			{Name: "S", Health: Health{Level: HealthOK}, SampledAt: at},
			{Name: "T", Health: Health{Level: HealthOK}, SampledAt: at},
		}}
	}
	var all []Consumer
	for _, st := range []string{"S", "T"} {
		for _, name := range []string{"kept", "gone"} {
			all = append(all, Consumer{Stream: st, Name: name, NumPending: 3, Health: Health{Level: HealthOK}, SampledAt: t0})
		}
	}
	require.NoError(t, db.SaveCycle(ctx, cycle(t0, all, map[string]bool{"S": true, "T": true})))
	require.Equal(t, 4, countRows(t, db, `SELECT COUNT(*) FROM consumers`))

	at := t0.Add(10 * time.Second)
	seen := []Consumer{
		{Stream: "S", Name: "kept", Health: Health{Level: HealthOK}, SampledAt: at},
		{Stream: "T", Name: "kept", Health: Health{Level: HealthOK}, SampledAt: at},
	}
	require.NoError(t, db.SaveCycle(ctx, cycle(at, seen, map[string]bool{"S": true, "T": false})))
	_, err := db.Consumer(ctx, "S", "gone")
	require.ErrorIs(t, err, ErrNotFound)
	c, err := db.Consumer(ctx, "T", "gone")
	require.NoError(t, err, "T's consumers were not all listed: its unseen consumer stays")
	require.Equal(t, uint64(3), c.NumPending)
	for _, st := range []string{"S", "T"} {
		_, err := db.Consumer(ctx, st, "kept")
		require.NoError(t, err)
	}
}

// TestRemovingGoneConsumersReadsNoRows: what a complete cycle removes is
// found from the primary key of consumers (their count per stream, the
// gone streams' ranges), never by reading every consumer's row.
func TestRemovingGoneConsumersReadsNoRows(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, q := range []struct{ query, want string }{
		{`SELECT stream, COUNT(*) FROM consumers GROUP BY stream`, "SCAN consumers USING COVERING INDEX sqlite_autoindex_consumers_1"},
		{`DELETE FROM consumers WHERE stream IN (SELECT name FROM streams WHERE sampled_at < 1)`,
			"SEARCH consumers USING COVERING INDEX sqlite_autoindex_consumers_1 (stream=?)"},
	} {
		plan := queryPlan(t, db, q.query)
		require.Contains(t, plan, q.want, q.query)
		require.NotContains(t, plan, "SCAN consumers\n", q.query)
	}
}

// TestSaveCycleKeepsTheConfigOfAConsumerReadWithout: the sampler leaves a
// consumer's config out while it is unchanged; the stored one stays, and a
// new consumer without one stores {}.
func TestSaveCycleKeepsTheConfigOfAConsumerReadWithout(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cycle := func(at time.Time, consumers ...Consumer) Cycle {
		return Cycle{At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{"S": true}, Consumers: consumers,
			Streams: []Stream{{Name: "S", Health: Health{Level: HealthOK}, SampledAt: at}}}
	}
	c := Consumer{Stream: "S", Name: "c", NumPending: 1, Health: Health{Level: HealthOK}, Config: json.RawMessage(`{"durable_name":"c"}`)}
	require.NoError(t, db.SaveCycle(ctx, cycle(t0, c)))

	c.Config, c.NumPending = nil, 2
	fresh := Consumer{Stream: "S", Name: "d", Health: Health{Level: HealthOK}}
	require.NoError(t, db.SaveCycle(ctx, cycle(t0.Add(10*time.Second), c, fresh)))
	got, err := db.Consumer(ctx, "S", "c")
	require.NoError(t, err)
	require.Equal(t, uint64(2), got.NumPending, "the numbers are this cycle's")
	require.JSONEq(t, `{"durable_name":"c"}`, string(got.Config), "the config is the one stored")
	got, err = db.Consumer(ctx, "S", "d")
	require.NoError(t, err)
	require.JSONEq(t, `{}`, string(got.Config))
}

// TestConsumerNamesReadTheKeyOnly: a stream's consumer names come from the
// primary key, in order, without reading a row.
func TestConsumerNamesReadTheKeyOnly(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := Cycle{At: at, StreamsComplete: true, Streams: []Stream{{Name: "S", Health: Health{Level: HealthOK}}, {Name: "T", Health: Health{Level: HealthOK}}}}
	for _, name := range []string{"b", "a", "c"} {
		c.Consumers = append(c.Consumers, Consumer{Stream: "S", Name: name, Health: Health{Level: HealthOK}})
	}
	c.Consumers = append(c.Consumers, Consumer{Stream: "T", Name: "x", Health: Health{Level: HealthOK}})
	require.NoError(t, db.SaveCycle(ctx, c))
	names, err := db.ConsumerNames(ctx, "S")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, names)
	names, err = db.ConsumerNames(ctx, "none")
	require.NoError(t, err)
	require.Empty(t, names)
	require.Contains(t, queryPlan(t, db, `SELECT name FROM consumers WHERE stream = 'S' ORDER BY name`),
		"SEARCH consumers USING COVERING INDEX sqlite_autoindex_consumers_1 (stream=?)")
}
