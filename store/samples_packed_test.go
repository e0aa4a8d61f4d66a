package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// packedNames are a wide stream's consumers: more than a row holds, and
// names JSON escapes or SQLite might mangle.
func packedNames() []string {
	names := []string{`a&b<c>`, `q"uote`, `back\slash`, "ünïcode", "tab\tname"}
	for i := range 2*consumerSamplesPerRow + 5 {
		names = append(names, fmt.Sprintf("c%03d", i))
	}
	return names
}

// packedCycle is cycle i of stream W (packedNames' consumers, each with
// numbers of its own) and stream S (one consumer), listed in a shuffled
// order, with one W consumer deleted and one not read.
func packedCycle(t0 time.Time, i int, rnd *rand.Rand) Cycle {
	at := t0.Add(time.Duration(i) * 10 * time.Second)
	c := sampleCycle(at, uint64(1000+i))
	c.Streams = append(c.Streams, Stream{Name: "W", Health: Health{Level: HealthOK}, SampledAt: at})
	c.ConsumersComplete["W"] = true
	for k, name := range packedNames() {
		n := uint64(k*100 + i)
		c.Consumers = append(c.Consumers, Consumer{Stream: "W", Name: name, NumPending: n, NumAckPending: k, NumRedelivered: i,
			NumWaiting: 1, Delivered: SequencePair{ConsumerSeq: n + 1}, AckFloor: SequencePair{ConsumerSeq: n}, Health: Health{Level: HealthOK}, SampledAt: at})
	}
	c.Consumers = append(c.Consumers,
		Consumer{Stream: "W", Name: "zz-deleted", NumPending: 7, DeletedAt: &at, SampledAt: at, Health: Health{Level: HealthOK}},
		Consumer{Stream: "W", Name: "zz-unread", NumPending: 7, Unread: &Unread{Why: "no response"}, SampledAt: at, Health: Health{Level: HealthOK}})
	rnd.Shuffle(len(c.Consumers), func(a, b int) { c.Consumers[a], c.Consumers[b] = c.Consumers[b], c.Consumers[a] })
	return c
}

// TestConsumerSamplesArePackedByStream: a cycle's consumer samples are
// stored a stream's consumers to a row (a wide stream in several rows),
// whatever order the cycle lists them in, and every reader finds each
// consumer's own numbers: its history, the stream's sparklines and the
// samples a restart seeds the lag windows from. A deleted consumer and
// one not read record none.
func TestConsumerSamplesArePackedByStream(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		require.NoError(t, db.SaveCycle(ctx, packedCycle(t0, i, rnd)))
	}
	names := packedNames()
	rowsPerCycle := (len(names) + consumerSamplesPerRow - 1) / consumerSamplesPerRow
	require.Equal(t, 3*rowsPerCycle, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE stream = 'W'`))
	require.Equal(t, 3, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE stream = 'S'`))

	since, until := t0.Add(-time.Second), t0.Add(time.Minute)
	for k, name := range names {
		hist, err := db.ConsumerHistory(ctx, "W", name, since, until, 100)
		require.NoError(t, err)
		require.Len(t, hist, 3, name)
		for i, p := range hist {
			n := uint64(k*100 + i)
			require.Equal(t, ConsumerPoint{At: t0.Add(time.Duration(i) * 10 * time.Second), NumPending: n, NumAckPending: uint64(k),
				NumRedelivered: uint64(i), NumWaiting: 1, DeliveredSeq: n + 1, AckFloorSeq: n}, p, name)
		}
	}
	for _, name := range []string{"zz-deleted", "zz-unread", "c"} {
		hist, err := db.ConsumerHistory(ctx, "W", name, since, until, 100)
		require.NoError(t, err)
		require.Empty(t, hist, name)
	}
	hist, err := db.ConsumerHistory(ctx, "S", "c", since, until, 100)
	require.NoError(t, err)
	require.Len(t, hist, 3)
	require.Equal(t, uint64(1002), hist[2].NumPending)

	lines, err := db.PendingSparklines(ctx, "W", since, until, 100)
	require.NoError(t, err)
	want := map[string][]uint64{}
	for k, name := range names {
		want[name] = []uint64{uint64(k * 100), uint64(k*100 + 1), uint64(k*100 + 2)}
	}
	require.Equal(t, want, lines)

	seen := map[string][]uint64{}
	require.NoError(t, db.RecentConsumerSamples(ctx, since, func(stream, consumer string, p ConsumerPoint) {
		seen[stream+"/"+consumer] = append(seen[stream+"/"+consumer], p.NumPending)
	}))
	require.Len(t, seen, len(names)+1)
	require.Equal(t, []uint64{1000, 1001, 1002}, seen["S/c"])
	for name, pending := range want {
		require.Equal(t, pending, seen["W/"+name], name)
	}
}

// TestCompactKeepsEachPackedConsumersPeak: downsampling packed samples
// keeps each consumer's own maximum, a wide stream's consumers in one
// bucket row, and history reads them from the coarser tier.
func TestCompactKeepsEachPackedConsumersPeak(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 6 {
		c := packedCycle(t0, i, rnd)
		if i == 2 {
			for k := range c.Consumers {
				if c.Consumers[k].Name == "c040" {
					c.Consumers[k].NumPending = 99999 // a spike in the second row of W
				}
			}
		}
		require.NoError(t, db.SaveCycle(ctx, c))
	}
	ret, err := Retention{}.WithDefaults()
	require.NoError(t, err)
	res, err := db.Compact(ctx, t0.Add(25*time.Hour), ret)
	require.NoError(t, err)
	require.Positive(t, res.Downsampled)
	require.Zero(t, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE res = 0`))
	require.Equal(t, 1, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples WHERE res = 300 AND stream = 'W'`))

	since, until := t0.Add(-time.Hour), t0.Add(time.Hour)
	names := packedNames()
	for k, name := range names {
		hist, err := db.ConsumerHistory(ctx, "W", name, since, until, 10)
		require.NoError(t, err)
		require.Len(t, hist, 1, name)
		n := uint64(k*100 + 5)
		if name == "c040" {
			n = 99999
		}
		require.Equal(t, ConsumerPoint{At: t0, NumPending: n, NumAckPending: uint64(k), NumRedelivered: 5, NumWaiting: 1,
			DeliveredSeq: uint64(k*100 + 6), AckFloorSeq: uint64(k*100 + 5)}, hist[0], name)
	}
	lines, err := db.PendingSparklines(ctx, "W", since, until, 10)
	require.NoError(t, err)
	require.Len(t, lines, len(names))
	require.Equal(t, []uint64{99999}, lines["c040"])
}

// TestMigrationSixteenPacksHistory: consumer samples stored one a row
// before migration 16 are packed by it, every tier, and still found.
func TestMigrationSixteenPacksHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old, path := databaseAtVersion(t, 15)
	var err error
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{t0.Add(-time.Hour), t0, t0.Add(10 * time.Second)} {
		res := map[bool]int{true: 300, false: 0}[i == 0]
		for _, name := range []string{"c", "d", `q"uote`} {
			for _, stream := range []string{"S", "T"} {
				_, err = old.ExecContext(ctx, `INSERT INTO consumer_samples VALUES (?, ?, ?, ?, ?, 1, 2, 3, ?, ?)`,
					stream, name, res, at.UnixMilli(), 10*i+len(name)+len(stream), 100+i, 99+i)
				require.NoError(t, err)
			}
		}
		_, err = old.ExecContext(ctx, `INSERT INTO sample_times VALUES (?, ?)`, at.UnixMilli(), res)
		require.NoError(t, err)
	}
	require.NoError(t, old.Close())

	db, err := OpenFile(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, 6, countRows(t, db, `SELECT COUNT(*) FROM consumer_samples`), "a row per stream and time")
	for _, stream := range []string{"S", "T"} {
		for _, name := range []string{"c", "d", `q"uote`} {
			hist, err := db.ConsumerHistory(ctx, stream, name, t0.Add(-2*time.Hour), t0.Add(time.Minute), 1000)
			require.NoError(t, err)
			require.Len(t, hist, 3)
			for i, p := range hist {
				require.Equal(t, uint64(10*i+len(name)+len(stream)), p.NumPending, stream+"/"+name)
				require.Equal(t, ConsumerPoint{At: p.At, NumPending: p.NumPending, NumAckPending: 1, NumRedelivered: 2, NumWaiting: 3,
					DeliveredSeq: uint64(100 + i), AckFloorSeq: uint64(99 + i)}, p)
			}
		}
	}
	lines, err := db.PendingSparklines(ctx, "T", t0.Add(-2*time.Hour), t0.Add(time.Minute), 1000)
	require.NoError(t, err)
	require.Equal(t, map[string][]uint64{"c": {2, 12, 22}, "d": {2, 12, 22}, `q"uote`: {7, 17, 27}}, lines)
}

// TestEachPackedSampleReadsWhatSQLiteWrites: the unpacking a restart
// reads lag windows with takes SQLite's spacing, negative numbers and
// escaped names, and fails on a malformed row, saying where.
func TestEachPackedSampleReadsWhatSQLiteWrites(t *testing.T) {
	t.Parallel()
	type got struct {
		name string
		v    [6]int64
	}
	read := func(data string) ([]got, error) {
		var out []got
		err := eachPackedSample([]byte(data), func(name []byte, v *[6]int64) { out = append(out, got{string(name), *v}) })
		return out, err
	}
	out, err := read(` { "a" : [1, 2,3,4 ,5,-6] ,"q\"u\u00f6te":[0,0,0,0,0,9223372036854775807]}`)
	require.NoError(t, err)
	require.Equal(t, []got{{"a", [6]int64{1, 2, 3, 4, 5, -6}}, {`q"uöte`, [6]int64{0, 0, 0, 0, 0, 9223372036854775807}}}, out)
	out, err = read(`{}`)
	require.NoError(t, err)
	require.Empty(t, out)
	for _, bad := range []string{``, `[]`, `{"a":[1,2,3,4,5]}`, `{"a":[1,2,3,4,5,6,7]}`, `{"a":[1,2,3,4,5,x]}`, `{"a":[1,2,3,4,5,6]`, `{"a`, `{"a":[1,2,3,4,5,6] "b":[1,2,3,4,5,6]}`} {
		_, err := read(bad)
		require.ErrorContains(t, err, "packed consumer samples: ", bad)
	}
}
