package query

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// TestSearchLeavesHiddenPayloadsOut: with PayloadsHidden, a search matches
// subjects and errors only, in every query that takes a filter.
func TestSearchLeavesHiddenPayloadsOut(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	q := indexed(t, []letter{
		{stream: "PAYMENTS", consumer: "charge", subject: "payments.card", reason: dlq.ReasonError, errText: "card declined",
			payload: []byte(`{"card":"4111111111111111","holder":"ann"}`), at: at},
		{stream: "PAYMENTS", consumer: "charge", subject: "payments.card", reason: dlq.ReasonError, errText: "card 4111111111111111 expired",
			payload: []byte(`{"holder":"bob"}`), at: at.Add(time.Minute)},
	})
	ctx := context.Background()
	for _, c := range []struct {
		q              string
		shown, hidden  int
		hiddenFirstErr string
	}{
		{"4111111111111111", 2, 1, "card 4111111111111111 expired"}, // the second has it in its error
		{"411", 2, 1, "card 4111111111111111 expired"},
		{"ann", 1, 0, ""},
		{"holder", 2, 0, ""},
		{"card declined", 1, 1, "card declined"},
		{"payments card", 2, 2, "card 4111111111111111 expired"},
	} {
		for _, hidden := range []bool{false, true} {
			f := store.DeadLetterFilter{Q: c.q, PayloadsHidden: hidden}
			want := c.shown
			if hidden {
				want = c.hidden
			}
			n, err := q.Count(ctx, f)
			require.NoError(t, err)
			require.Equal(t, want, n, "count %q hidden=%v", c.q, hidden)
			n, _, err = q.CountUpTo(ctx, f, 100)
			require.NoError(t, err)
			require.Equal(t, want, n, "count up to %q hidden=%v", c.q, hidden)
			p, err := q.List(ctx, f, 10, "")
			require.NoError(t, err)
			require.Len(t, p.Items, want, "list %q hidden=%v", c.q, hidden)
			if hidden && want > 0 {
				require.Equal(t, c.hiddenFirstErr, p.Items[0].Error)
			}
			groups, err := q.Groups(ctx, f, 10, at.Add(time.Hour), time.Hour, 4)
			require.NoError(t, err)
			total := 0
			for _, g := range groups {
				total += g.Count
			}
			require.Equal(t, want, total, "groups %q hidden=%v", c.q, hidden)
		}
	}
}
