package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecentConsumerSamplesReadsARangeOfTimes: the samples a restart
// seeds lag windows from are those of listed consumers since the given
// time, oldest first, read as one range of the primary key in its order
// rather than a scan of every sample or a sort.
func TestRecentConsumerSamplesReadsARangeOfTimes(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		require.NoError(t, db.SaveCycle(ctx, sampleCycle(t0.Add(time.Duration(i)*10*time.Second), uint64(100+i))))
	}
	// A sample of a consumer the index no longer lists is left out.
	_, err := db.sql.Exec(`INSERT INTO consumer_samples VALUES (0, ?, 'S', '', '{"old":[1,0,0,0,1,1]}')`, t0.Add(time.Minute).UnixMilli())
	require.NoError(t, err)

	var got []ConsumerPoint
	require.NoError(t, db.RecentConsumerSamples(ctx, t0.Add(20*time.Second), func(stream, consumer string, p ConsumerPoint) {
		require.Equal(t, "S/c", stream+"/"+consumer)
		got = append(got, p)
	}))
	require.Len(t, got, 3)
	for i, p := range got {
		require.Equal(t, t0.Add(time.Duration(20+10*i)*time.Second), p.At)
		require.Equal(t, uint64(102+i), p.NumPending)
		require.Equal(t, uint64(102+i), p.DeliveredSeq)
	}

	rows, err := db.sql.Query(`EXPLAIN QUERY PLAN `+recentConsumerSamples, 0)
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
	require.Contains(t, strings.Join(plan, "\n"), "SEARCH consumer_samples USING PRIMARY KEY (res=? AND ts>?)")
	require.NotContains(t, strings.Join(plan, "\n"), "TEMP B-TREE", "rows come in order, not sorted in memory: %v", plan)
}

func TestConsumerKinds(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := sampleCycle(at, 5)
	c.Consumers = append(c.Consumers,
		Consumer{Stream: "S", Name: "durable", Durable: true, SampledAt: at},
		Consumer{Stream: "S", Name: "reader", Durable: true, Own: true, SampledAt: at},
		Consumer{Stream: "S", Name: "deleted", Durable: true, DeletedAt: &at, SampledAt: at})
	require.NoError(t, db.SaveCycle(ctx, c))
	kinds, err := db.ConsumerKinds(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ConsumerKind{
		{Stream: "S", Name: "c"},
		{Stream: "S", Name: "durable", Durable: true},
		{Stream: "S", Name: "reader", Durable: true, Own: true},
		{Stream: "S", Name: "deleted", Durable: true, Deleted: true},
	}, kinds)
}
