package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkStreamTableWindow reads the window of jetwatch's own streams
// that page 300 of every account's stream table merges (10,000 streams
// here, 10,000 in other accounts: rows 4,950 to 15,000), in each order:
// as keys (QueryStreamKeys) and whole (QueryStreams, as it did before).
func BenchmarkStreamTableWindow(b *testing.B) {
	ctx := context.Background()
	db, err := OpenFile(ctx, filepath.Join(b.TempDir(), "jetwatch.db"))
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := benchCycle(at, 10_000, 0)
	for i := range c.Streams {
		st := &c.Streams[i]
		st.ConsumerCount, st.InPerSec = i%13, float64(i%101)/4
		if i%50 == 7 {
			st.Health.Raise(HealthWarning, "replica behind")
		}
	}
	require.NoError(b, db.SaveCycle(ctx, c))
	for _, sort := range StreamSorts {
		q := StreamQuery{Own: false, Sort: sort, StaleBefore: at.Add(-30 * time.Second), Offset: 4950, Limit: 10_050}
		b.Run("sort="+sort+"/keys", func(b *testing.B) {
			for b.Loop() {
				res, err := db.QueryStreamKeys(ctx, q)
				if err != nil || len(res.Keys) != 10_000-4950 {
					b.Fatalf("%d keys, %v", len(res.Keys), err)
				}
			}
		})
		b.Run("sort="+sort+"/whole", func(b *testing.B) {
			for b.Loop() {
				res, err := db.QueryStreams(ctx, q)
				if err != nil || len(res.Streams) != 10_000-4950 {
					b.Fatalf("%d streams, %v", len(res.Streams), err)
				}
			}
		})
	}
}
