package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTrimEventsGoesOldestFirstInBatches: a trim removes only events below
// the sequence given, oldest first, at most a batch a call, and the
// timeline's position stays where it was.
func TestTrimEventsGoesOldestFirstInBatches(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	var events []AdvisoryEvent
	for _, id := range []uint64{2, 3, 5, 8, 9, 10, 14} {
		events = append(events, AdvisoryEvent{Event: Event{ID: id, Kind: "stream_created", At: at, Stream: fmt.Sprint("S", id),
			Severity: SeverityInfo, Summary: "created", AdvisoryID: fmt.Sprint("a", id)}, Data: "{}"})
	}
	_, err := db.InsertAdvisoryEvents(ctx, events, "advisories", 14)
	require.NoError(t, err)
	ids := func() []uint64 {
		es, err := db.Events(ctx, EventFilter{Limit: 100})
		require.NoError(t, err)
		var out []uint64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, step := range []struct {
		n    int64
		left []uint64
	}{
		{2, []uint64{14, 10, 9, 8, 5}},
		{2, []uint64{14, 10, 9}},
		{1, []uint64{14, 10}},
		{0, []uint64{14, 10}},
	} {
		n, err := db.TrimEvents(ctx, 10, 2)
		require.NoError(t, err)
		require.Equal(t, step.n, n)
		require.Equal(t, step.left, ids())
	}
	pos, err := db.Position(ctx, "advisories")
	require.NoError(t, err)
	require.Equal(t, uint64(14), pos)
}
