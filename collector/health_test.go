package collector

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// judgedConsumers are a stream's consumers c0..c<n-1> as judged: ok
// unless levels names one's level. A level "unread" is a consumer the
// cycle could not read, "own" one of jetwatch's own, stopped.
func judgedConsumers(n int, levels map[int]string) []store.Consumer {
	cs := make([]store.Consumer, n)
	for i := range cs {
		c := &cs[i]
		c.Name = fmt.Sprintf("c%d", i)
		c.Health = store.Health{Level: store.HealthOK}
		switch level := levels[i]; level {
		case "":
		case "unread":
			c.Unread = &store.Unread{Why: "timeout"}
		case "own":
			c.Own = true
			c.Health.Raise(store.HealthCritical, "stopped: nobody is consuming")
		default:
			c.Health.Raise(level, level+" reason of "+c.Name)
		}
	}
	return cs
}

func TestStreamHealthNamesItsWorstConsumersAndCountsTheRest(t *testing.T) {
	w, c := store.HealthWarning, store.HealthCritical
	for _, tc := range []struct {
		name    string
		n       int
		levels  map[int]string
		level   string
		reasons []string
	}{
		{name: "every consumer well", n: 5, level: store.HealthOK},
		{name: "jetwatch's own consumers never count", n: 3, levels: map[int]string{1: "own"}, level: store.HealthOK},
		{name: "as many unwell as are named: no count", n: 6, levels: map[int]string{1: w, 3: "unread", 5: c},
			level: c, reasons: []string{
				"consumer c5: critical reason of c5",
				"consumer c1: warning reason of c1",
				"consumer c3 could not be read (timeout)",
			}},
		{name: "critical ones first, then by name, the rest counted", n: 10,
			levels: map[int]string{0: w, 2: w, 3: "own", 4: w, 5: c, 6: w, 7: "unread", 8: c, 9: w},
			level:  c, reasons: []string{
				"consumer c5: critical reason of c5",
				"consumer c8: critical reason of c8",
				"consumer c0: warning reason of c0",
				"consumers: 4 more are unwell (all warning); 1 could not be read: see the stream's consumers",
			}},
		{name: "consumers not read are counted apart: they are not known to be unwell", n: 6,
			levels: map[int]string{0: c, 1: c, 2: c, 3: "unread", 4: "unread", 5: c},
			level:  c, reasons: []string{
				"consumer c0: critical reason of c0",
				"consumer c1: critical reason of c1",
				"consumer c2: critical reason of c2",
				"consumers: 1 more is unwell (critical); 2 could not be read: see the stream's consumers",
			}},
		{name: "only consumers not read beyond those named", n: 5,
			levels: map[int]string{0: c, 1: c, 2: c, 3: "unread", 4: "unread"},
			level:  c, reasons: []string{
				"consumer c0: critical reason of c0",
				"consumer c1: critical reason of c1",
				"consumer c2: critical reason of c2",
				"consumers: 2 more could not be read: see the stream's consumers",
			}},
		{name: "critical ones beyond those named are counted apart", n: 8,
			levels: map[int]string{1: c, 2: w, 3: c, 4: c, 5: c, 6: c, 7: w},
			level:  c, reasons: []string{
				"consumer c1: critical reason of c1",
				"consumer c3: critical reason of c3",
				"consumer c4: critical reason of c4",
				"consumers: 4 more are unwell (2 critical, 2 warning): see the stream's consumers",
			}},
		{name: "one more", n: 4, levels: map[int]string{0: c, 1: c, 2: c, 3: c},
			level: c, reasons: []string{
				"consumer c0: critical reason of c0",
				"consumer c1: critical reason of c1",
				"consumer c2: critical reason of c2",
				"consumers: 1 more is unwell (critical): see the stream's consumers",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.Stream{Name: "ORDERS"}
			judgeStream(&st, judgedConsumers(tc.n, tc.levels))
			require.Equal(t, tc.level, st.Health.Level)
			require.Equal(t, tc.reasons, st.Health.Reasons)
			for _, r := range st.Health.Reasons {
				require.True(t, store.IsConsumerReason(r), "%q is about consumers: the overview's triage leaves it to them", r)
			}
		})
	}
}

// A stream's own reasons stay, whatever its consumers: the triage shows
// them as the stream's problem.
func TestStreamHealthKeepsItsOwnReasonsBesideItsConsumers(t *testing.T) {
	used := 99.0
	st := store.Stream{Name: "ORDERS", Limits: store.StreamLimits{MsgsUsedPct: &used, Discard: "new"}}
	judgeStream(&st, judgedConsumers(5, map[int]string{0: store.HealthWarning, 1: store.HealthWarning,
		2: store.HealthWarning, 3: store.HealthWarning, 4: store.HealthWarning}))
	require.Equal(t, store.HealthCritical, st.Health.Level)
	require.Len(t, st.Health.Reasons, 5)
	require.False(t, store.IsConsumerReason(st.Health.Reasons[0]), st.Health.Reasons[0])
	require.Equal(t, "consumers: 2 more are unwell (all warning): see the stream's consumers", st.Health.Reasons[4])
}
