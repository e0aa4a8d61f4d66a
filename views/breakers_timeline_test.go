package views

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
)

func transition(from, to string, at time.Time) store.BreakerTransition {
	return store.BreakerTransition{Service: "svc", Breaker: "b", From: from, To: to, At: at}
}

// TestBreakerTimelineScalesToAYoungHistory: breakers first seen three
// minutes ago fill the axis instead of a sliver of an hour.
func TestBreakerTimelineScalesToAYoungHistory(t *testing.T) {
	t.Parallel()
	first := testNow.Add(-3 * time.Minute)
	h := BreakerHistory{Breaker: store.Breaker{Service: "svc", Breaker: "b", State: store.BreakerOpen},
		Transitions: []store.BreakerTransition{transition("unknown", store.BreakerClosed, first),
			transition(store.BreakerClosed, store.BreakerOpen, testNow.Add(-time.Minute))}}
	tl := NewBreakerTimeline(testNow.Add(-time.Hour), testNow, []BreakerHistory{h})
	require.Equal(t, first, tl.From)
	require.Len(t, tl.Lanes, 1)
	spans := tl.Lanes[0].Spans
	require.Len(t, spans, 2)
	require.InDelta(t, timelinePadX, spans[0].X, 0.01, "the first report is at the left edge")
	require.InDelta(t, timelineW-timelinePadX, spans[1].X+spans[1].W, 0.01, "now is at the right edge")
	require.InDelta(t, spans[0].W*0.5, spans[1].W, 0.01, "one minute of three")
	require.NotEmpty(t, tl.Ticks)
	require.LessOrEqual(t, len(tl.Ticks), 7)
	for _, tick := range tl.Ticks {
		_, err := time.Parse("15:04:05", tick.Label)
		require.NoError(t, err, "a short axis labels seconds: %s", tick.Label)
	}

	// A breaker seen a moment ago still gets a minute of axis.
	h.Transitions = []store.BreakerTransition{transition("unknown", store.BreakerClosed, testNow.Add(-time.Second))}
	tl = NewBreakerTimeline(testNow.Add(-time.Hour), testNow, []BreakerHistory{h})
	require.Equal(t, testNow.Add(-timelineMinWindow), tl.From)

	// One breaker with history before the window: the whole window.
	old := BreakerHistory{Breaker: store.Breaker{Service: "old", Breaker: "b", State: store.BreakerClosed},
		Transitions: []store.BreakerTransition{transition("open", store.BreakerClosed, testNow.Add(-2*time.Hour))}}
	tl = NewBreakerTimeline(testNow.Add(-time.Hour), testNow, []BreakerHistory{h, old})
	require.Equal(t, testNow.Add(-time.Hour), tl.From)
	for _, tick := range tl.Ticks {
		_, err := time.Parse("15:04", tick.Label)
		require.NoError(t, err, "an hour's axis labels minutes: %s", tick.Label)
	}
}

// TestBreakerTimelineShowsShortProbesAndStaleEnds: a probe of a few
// milliseconds stays visible, and a stale breaker's lane ends at its
// last report rather than claiming a state up to now.
func TestBreakerTimelineShowsShortProbesAndStaleEnds(t *testing.T) {
	t.Parallel()
	opened := testNow.Add(-30 * time.Minute)
	last := testNow.Add(-10 * time.Minute)
	h := BreakerHistory{Breaker: store.Breaker{Service: "svc", Breaker: "b", State: store.BreakerOpen, Stale: true, UpdatedAt: last},
		Transitions: []store.BreakerTransition{transition("closed", store.BreakerOpen, opened),
			transition(store.BreakerOpen, store.BreakerHalfOpen, opened.Add(time.Minute)),
			transition(store.BreakerHalfOpen, store.BreakerOpen, opened.Add(time.Minute+3*time.Millisecond))}}
	tl := NewBreakerTimeline(testNow.Add(-time.Hour), testNow, []BreakerHistory{h})
	spans := tl.Lanes[0].Spans
	require.Len(t, spans, 3)
	require.Equal(t, store.BreakerHalfOpen, spans[1].State)
	require.GreaterOrEqual(t, spans[1].W, timelineMinSpanW)
	require.Equal(t, last, spans[2].To, "nothing is known after the last report")
	require.Len(t, tl.Lanes[0].Outages, 1)
	require.Equal(t, opened, tl.Lanes[0].Outages[0].From)
	require.Contains(t, tl.Lanes[0].Outages[0].Title, "1 probe")

	// Rendered: every span and outage is there, names escaped.
	h.Breaker.Service = `<script>alert(1)</script>`
	doc := render(t, BreakerTimelineView(NewBreakerTimeline(testNow.Add(-time.Hour), testNow, []BreakerHistory{h}), "1h", []string{"1h", "24h"}))
	require.Len(t, byTestID(doc, "breaker-span"), 3)
	require.Len(t, byTestID(doc, "breaker-outage"), 1)
	lanes := byTestID(doc, "breaker-lane")
	require.Len(t, lanes, 1)
	require.Equal(t, `<script>alert(1)</script> / b`, attr(lanes[0], "data-breaker"))
	require.Zero(t, countElements(doc, "script"), "the name is text, not markup")
	for _, n := range byTestID(doc, "breaker-span") {
		x, err := strconv.ParseFloat(attr(n, "x"), 64)
		require.NoError(t, err)
		require.True(t, x >= 0 && x <= timelineW, "x %v inside the chart", x)
	}
}

// countElements counts the elements named tag.
func countElements(n *html.Node, tag string) int {
	c := 0
	if n.Type == html.ElementNode && n.Data == tag {
		c++
	}
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		c += countElements(ch, tag)
	}
	return c
}
