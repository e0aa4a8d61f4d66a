package views

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/store"
)

func TestFilterQueryKeepsTimesExact(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 1, 10, 0, 0, 123_456_789, time.UTC)
	q := FilterQuery(store.DeadLetterFilter{Since: since, Until: since.Add(time.Hour).Truncate(time.Second)})
	require.Equal(t, "2026-12-01T10:00:00.123456789Z", q.Get("since"))
	require.Equal(t, "2026-12-01T11:00:00Z", q.Get("until"))
}

func TestBulkTextsSayWhatTheJobActsOn(t *testing.T) {
	t.Parallel()
	require.Equal(t, "every one", FilterText(store.DeadLetterFilter{Status: store.StatusPending, MaxID: 9}))
	f := store.DeadLetterFilter{Stream: "ORDERS", Reason: dlq.ReasonError, Q: "card declined", IDs: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	require.Equal(t, "the ticked #1, #2, #3, #4, #5, #6, #7, #8, #9, #10 and 2 more, stream ORDERS, reason error, search “card declined”", FilterText(f))

	p := bulk.Plan{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Matched: 14, Sample: make([]store.DeadLetter, 10), UpToID: 1234}
	require.Equal(t, "14 pending dead letters match (stream ORDERS), up to #1234. The job acts on these only: new ones that arrive later are not included.", PlanText(p))
	require.Equal(t, "Showing the newest 10 of 14.", ShowingText(p))
	p.Matched, p.Sample = 1, p.Sample[:1]
	require.Equal(t, "1 pending dead letter matches (stream ORDERS), up to #1234. The job acts on these only: new ones that arrive later are not included.", PlanText(p))
	require.Equal(t, "Showing it.", ShowingText(p))
	p.Matched, p.Sample = 3, make([]store.DeadLetter, 3)
	require.Equal(t, "Showing all 3.", ShowingText(p))
	require.Equal(t, "No pending dead letter matches (stream ORDERS): there is nothing to do.", PlanText(bulk.Plan{Filter: store.DeadLetterFilter{Stream: "ORDERS"}}))

	j := bulk.Job{ID: "0123456789abcdef", Action: dlq.ActionRedeliver, State: bulk.JobRunning, Total: 14, Sent: 4, Failed: 1,
		Filter: store.DeadLetterFilter{Stream: "ORDERS"}, MaxID: 1234}
	require.Equal(t, "Bulk redeliver 0123456789abcdef running: 5/14", JobBannerText(j))
	require.Equal(t, "4 of 14 done, 1 failed", JobCountsText(j))
	require.Equal(t, "Pending dead letters matching stream ORDERS, up to #1234: 14 when it started; later ones are not included.", JobScopeText(j))
	require.InDelta(t, 35.7, JobProgress(j), 0.1)
}
