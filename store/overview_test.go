package store

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamKeysOrderAsQueryStreams: each order's keys are QueryStreams's
// streams (filters, order, window, total), each the StreamKeyOf the
// stream read whole, and CompareStreamKeys orders them strictly, so web
// can merge them with streams in memory. Among them are values SQLite
// holds otherwise than Go: messages past int64, rates in decimal, a
// stream the last cycle did not sample (stale), names in byte order.
func TestStreamKeysOrderAsQueryStreams(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	levels := []string{HealthOK, HealthWarning, HealthCritical}
	names := []string{"a", "B", "b", "é", "a_b", "a%b", `a\b`, "Zz", "z", "ORDERS", "orders.1", "日本", "A", "ab"}
	rates := []float64{0, 0.1, 1.0 / 3, 2.675, 1e-7, 1e300, 0.5}
	var first []Stream
	for i, name := range names {
		first = append(first, Stream{Name: name, Messages: uint64(i%4) * 10, Bytes: uint64(i % 3),
			InPerSec: rates[i%len(rates)], ConsumerCount: i % 2, Own: i%5 == 0,
			Health: Health{Level: levels[i%3]}, SampledAt: t0})
	}
	first[1].Messages = math.MaxUint64 - 1 // SQLite holds -2
	first[2].Messages = 1 << 63            // and math.MinInt64
	first[3].Bytes = math.MaxInt64
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: t0, StreamsComplete: true, Streams: first}))
	// The next cycle reads half of them; the others stay as read at t0.
	var second []Stream
	for i := 0; i < len(first); i += 2 {
		st := first[i]
		st.SampledAt = t1
		second = append(second, st)
	}
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: t1, Streams: second}))
	stale := t1.Add(-time.Second)

	for _, sort := range StreamSorts {
		for _, own := range []bool{false, true} {
			for _, search := range []string{"", "A", "_", `\`, "%", "nothing"} {
				q := StreamQuery{Own: own, Search: search, Sort: sort, StaleBefore: stale, Limit: 100}
				whole, err := db.QueryStreams(ctx, q)
				require.NoError(t, err)
				keys, err := db.QueryStreamKeys(ctx, q)
				require.NoError(t, err)
				require.Equal(t, whole.Total, keys.Total, "%s own=%v %q", sort, own, search)
				require.Len(t, keys.Keys, len(whole.Streams))
				for i := range whole.Streams {
					require.Equal(t, StreamKeyOf(&whole.Streams[i], sort, stale), keys.Keys[i], "%s own=%v %q", sort, own, search)
					if i > 0 {
						require.Negative(t, CompareStreamKeys(keys.Keys[i-1], keys.Keys[i]), "%s: %s then %s", sort, keys.Keys[i-1].Name, keys.Keys[i].Name)
					}
				}
				for off := 0; off <= len(keys.Keys)+1; off += 3 {
					q.Offset, q.Limit = off, 4
					w, err := db.QueryStreamKeys(ctx, q)
					require.NoError(t, err)
					require.Equal(t, keys.Total, w.Total)
					require.Equal(t, keys.Keys[min(off, len(keys.Keys)):min(off+4, len(keys.Keys))], w.Keys, "%s own=%v %q from %d", sort, own, search, off)
				}
			}
		}
	}

	// The stale rank and the values SQLite holds are those of the keys.
	k, err := db.QueryStreamKeys(ctx, StreamQuery{Own: true, Search: "é", StaleBefore: stale})
	require.NoError(t, err)
	require.Equal(t, []StreamKey{{Name: "é", Value: 1}}, k.Keys, "sampled before stale: below warning")
	k, err = db.QueryStreamKeys(ctx, StreamQuery{Own: true, Search: "B", Sort: SortMessages})
	require.NoError(t, err)
	require.Equal(t, []StreamKey{{Name: "B", Value: -2}, {Name: "b", Value: math.MinInt64}}, k.Keys[len(k.Keys)-2:],
		"messages past int64 come last, as SQLite holds them")

	// A rate or consumer count missing (a row migrated from JSON without
	// them) is NULL, which SQLite orders last: so do its keys.
	_, err = db.SQLForTests().ExecContext(ctx, `UPDATE streams SET data = json_remove(data, '$.in_per_sec', '$.consumer_count'),
		in_per_sec = NULL, consumer_count = NULL WHERE name = 'B'`)
	require.NoError(t, err)
	for _, sort := range []string{SortRate, SortConsumers} {
		k, err := db.QueryStreamKeys(ctx, StreamQuery{Own: true, Sort: sort})
		require.NoError(t, err)
		require.Len(t, k.Keys, len(names))
		require.Equal(t, "B", k.Keys[len(k.Keys)-1].Name, sort)
		for i := 1; i < len(k.Keys); i++ {
			require.Negative(t, CompareStreamKeys(k.Keys[i-1], k.Keys[i]), sort)
		}
	}

	_, err = db.QueryStreamKeys(ctx, StreamQuery{Sort: "size"})
	require.ErrorContains(t, err, `unknown order "size"`)
}

// TestStreamsNamedReadsThoseStored: the streams of a page of keys, read
// whole, by the names asked for (not UTF-8 too); a name not stored
// (removed since, or never) is left out.
func TestStreamsNamedReadsThoseStored(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var streams []Stream
	for _, name := range []string{"ORDERS", "a'b", "bad\xff\xfeutf8", "x?y"} {
		streams = append(streams, Stream{Name: name, Messages: uint64(len(name)), Subjects: []string{name + ".>"},
			Health: Health{Level: HealthOK}, SampledAt: at})
	}
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: at, StreamsComplete: true, Streams: streams}))

	got, err := db.StreamsNamed(ctx, []string{"bad\xff\xfeutf8", "gone", "ORDERS", "a'b", "ORDERS", "x?%"})
	require.NoError(t, err)
	require.Len(t, got, 3)
	for _, want := range streams[:3] {
		st, ok := got[want.Name]
		require.True(t, ok, want.Name)
		require.Equal(t, want.Messages, st.Messages)
		require.Len(t, st.Subjects, 1, "read whole")
		require.True(t, st.SampledAt.Equal(at))
	}

	got, err = db.StreamsNamed(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	// More names than one query binds (SQLite's bound is 32,766).
	many := make([]string, 40_000)
	for i := range many {
		many[i] = "missing"
	}
	many[39_000] = "x?y"
	got, err = db.StreamsNamed(ctx, many)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Contains(t, got, "x?y")
}

// TestMigrationNineteenKeepsTheStreamOrders: streams stored before
// migration 19 sort by rate and by consumers as their JSON said, one
// without those values last.
func TestMigrationNineteenKeepsTheStreamOrders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old, path := databaseAtVersion(t, 18)
	var err error
	for _, row := range []struct{ name, data string }{
		{"slow", `{"name":"slow","in_per_sec":0.5,"consumer_count":7}`},
		{"fast", `{"name":"fast","in_per_sec":250,"consumer_count":1}`},
		{"old", `{"name":"old"}`},
	} {
		_, err = old.ExecContext(ctx, `INSERT INTO streams (name, sampled_at, messages, bytes, health, data, config)
			VALUES (?, 1, 0, 0, 'ok', ?, '{}')`, row.name, row.data)
		require.NoError(t, err)
	}
	require.NoError(t, old.Close())

	db, err := OpenFile(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	for sort, want := range map[string][]string{SortRate: {"fast", "slow", "old"}, SortConsumers: {"slow", "fast", "old"}} {
		res, err := db.QueryStreams(ctx, StreamQuery{Own: true, Sort: sort, Limit: 10})
		require.NoError(t, err)
		var got []string
		for _, s := range res.Streams {
			got = append(got, s.Name)
		}
		require.Equal(t, want, got, sort)
		keys, err := db.QueryStreamKeys(ctx, StreamQuery{Own: true, Sort: sort, Limit: 10})
		require.NoError(t, err)
		require.Len(t, keys.Keys, 3)
		for i := range keys.Keys {
			require.Equal(t, want[i], keys.Keys[i].Name, sort)
		}
	}
}

// TestTriageIsReadInIndexOrder: the overview's unwell streams and
// consumers and its largest backlogs are the first rows of an index, in
// the order shown (worst first, then the backlog, ties by stream and
// name), so a page costs the same however many match: no query sorts
// more than the rows it returns. The totals count every match, jetwatch's
// own only when asked for.
func TestTriageIsReadInIndexOrder(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	for _, q := range []string{unwellStreamsQuery, unwellConsumersQuery, topLaggingQuery} {
		plan := queryPlan(t, db, q, false, 50)
		require.Regexp(t, `(SCAN|SEARCH) (streams|consumers) USING (COVERING )?INDEX (streams_unwell|consumers_unwell|consumers_pending)`, plan)
		lines := strings.Split(plan, "\n")
		for i, line := range lines {
			if strings.Contains(line, "TEMP B-TREE") {
				require.Equal(t, len(lines)-1, i, "only the rows returned are sorted, after the join: %s", plan)
			}
		}
		require.NotRegexp(t, `SCAN (streams|consumers)\n`, plan+"\n", "no query reads every row: %s", plan)
	}

	at := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	c := Cycle{At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{}}
	for _, st := range []struct {
		name, level string
		own         bool
	}{
		{"B", HealthWarning, false}, {"A", HealthCritical, false}, {"C", HealthOK, false},
		{"D", HealthCritical, false}, {"KV_jetwatch", HealthCritical, true}, {"a", HealthWarning, false},
	} {
		c.Streams = append(c.Streams, Stream{Name: st.name, Own: st.own, Health: Health{Level: st.level}, SampledAt: at})
	}
	type cons struct {
		stream, name, level string
		pending             uint64
		stalled, own        bool
	}
	for _, cs := range []cons{
		{"A", "w1", HealthWarning, 7, false, false},
		{"A", "c2", HealthCritical, 5, true, false},
		{"B", "c1", HealthCritical, 5, true, false},
		{"A", "c1", HealthCritical, 5, true, false},
		{"B", "big", HealthCritical, 9, false, false},
		{"B", "s", HealthOK, 3, true, false}, // stalled while ok
		{"C", "ok", HealthOK, 100, false, false},
		{"C", "idle", HealthOK, 0, false, false},
		{"KV_jetwatch", "own", HealthCritical, 1000, true, true},
		{"D", "w2", HealthWarning, 7, false, false},
	} {
		c.Consumers = append(c.Consumers, Consumer{Stream: cs.stream, Name: cs.name, NumPending: cs.pending, Stalled: cs.stalled,
			Own: cs.own, Health: Health{Level: cs.level}, SampledAt: at})
	}
	slices.SortFunc(c.Consumers, func(a, b Consumer) int {
		return cmp.Or(strings.Compare(a.Stream, b.Stream), strings.Compare(a.Name, b.Name))
	})
	require.NoError(t, db.SaveCycle(ctx, c))

	names := func(cs []Consumer) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Stream+"/"+c.Name)
		}
		return out
	}
	u, err := db.Unwell(ctx, 4, false)
	require.NoError(t, err)
	require.Equal(t, []string{"A", "D", "B", "a"}, namesOf(u.Streams))
	require.Equal(t, 4, u.StreamTotal)
	require.Equal(t, []string{"B/big", "A/c1", "A/c2", "B/c1"}, names(u.Consumers))
	require.Equal(t, 7, u.ConsumerTotal)

	u, err = db.Unwell(ctx, 2, true)
	require.NoError(t, err)
	require.Equal(t, []string{"A", "D"}, namesOf(u.Streams))
	require.Equal(t, 5, u.StreamTotal)
	require.Equal(t, []string{"KV_jetwatch/own", "B/big"}, names(u.Consumers))
	require.Equal(t, 8, u.ConsumerTotal)

	u, err = db.Unwell(ctx, 50, false)
	require.NoError(t, err)
	require.Equal(t, []string{"B/big", "A/c1", "A/c2", "B/c1", "A/w1", "D/w2", "B/s"}, names(u.Consumers))

	top, err := db.TopLagging(ctx, 5, false)
	require.NoError(t, err)
	require.Equal(t, []string{"C/ok", "B/big", "A/w1", "D/w2", "A/c1"}, names(top))
	top, err = db.TopLagging(ctx, 1, true)
	require.NoError(t, err)
	require.Equal(t, []string{"KV_jetwatch/own"}, names(top))
}

func namesOf(sts []Stream) []string {
	var out []string
	for _, st := range sts {
		out = append(out, st.Name)
	}
	return out
}
