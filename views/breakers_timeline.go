package views

import (
	"fmt"
	"strconv"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// Breaker timeline geometry, in SVG user units: per breaker, a label line
// above its lane of spans; the time axis along the bottom.
const (
	timelineW       = 720.0
	timelinePadX    = 8.0
	timelineLabelH  = 14.0
	timelineLaneH   = 14.0
	timelineOutageH = 3.0
	timelineGap     = 10.0
	timelineAxisH   = 20.0
	// timelineMinSpanW keeps a probe of a few milliseconds visible.
	timelineMinSpanW = 1.5
	// timelineMinWindow is the shortest axis, for breakers first seen a
	// moment ago.
	timelineMinWindow = time.Minute
)

// BreakerHistory is one breaker and its transitions over a window, oldest
// first, as store.DB.BreakerHistory returns them.
type BreakerHistory struct {
	Breaker     store.Breaker
	Transitions []store.BreakerTransition
	// Truncated says older transitions in the window were left out.
	Truncated bool
}

// BreakerTimeline draws each breaker's open, half-open and closed spans on
// one time axis, and its outages (open through every probe until closed)
// as a bar above them.
type BreakerTimeline struct {
	From, To time.Time
	W, H     float64
	Lanes    []BreakerLane
	Ticks    []BreakerTick
	// Desc says in words what the timeline shows, for screen readers.
	Desc string
}

// BreakerLane is one breaker's row.
type BreakerLane struct {
	Label     string
	LabelY    float64
	Y         float64
	Spans     []BreakerSpan
	Outages   []BreakerSpan
	Truncated bool
}

// BreakerSpan is a state held from From to To, placed at X with width W.
type BreakerSpan struct {
	State    string
	From, To time.Time
	X, W     float64
	Title    string
}

// BreakerTick is a time label on the axis.
type BreakerTick struct {
	X      float64
	Label  string
	Anchor string
}

// NewBreakerTimeline lays out the histories between from and to. When
// every breaker was first seen after from, the axis starts at the first
// report (at least timelineMinWindow before to), so a young history is not
// a sliver at the right edge.
func NewBreakerTimeline(from, to time.Time, histories []BreakerHistory) BreakerTimeline {
	from = timelineStart(from, to, histories)
	tl := BreakerTimeline{From: from, To: to, W: timelineW}
	span := to.Sub(from)
	x := func(t time.Time) float64 {
		if t.Before(from) {
			t = from
		}
		if t.After(to) {
			t = to
		}
		return timelinePadX + float64(t.Sub(from))/float64(span)*(timelineW-2*timelinePadX)
	}
	y := 0.0
	outages := 0
	for _, h := range histories {
		lane := BreakerLane{Label: h.Breaker.Service + " / " + h.Breaker.Breaker, LabelY: y + timelineLabelH - 3,
			Y: y + timelineLabelH + timelineOutageH + 1, Truncated: h.Truncated}
		for _, s := range breakerSpans(h, from, to) {
			s.X, s.W = x(s.From), max(x(s.To)-x(s.From), timelineMinSpanW)
			s.Title = fmt.Sprintf("%s %s – %s (%s)", s.State, clock(s.From), clock(s.To), Duration(s.To.Sub(s.From)))
			lane.Spans = append(lane.Spans, s)
		}
		for _, o := range outagesOf(lane.Spans) {
			o.X, o.W = x(o.From), max(x(o.To)-x(o.From), timelineMinSpanW)
			lane.Outages = append(lane.Outages, o)
		}
		outages += len(lane.Outages)
		tl.Lanes = append(tl.Lanes, lane)
		y += timelineLabelH + timelineOutageH + 1 + timelineLaneH + timelineGap
	}
	tl.H = y + timelineAxisH
	tl.Ticks = timelineTicks(from, to, x)
	tl.Desc = fmt.Sprintf("%d breakers from %s to %s UTC: %d outages.", len(histories), clock(from), clock(to), outages)
	return tl
}

// timelineStart is from, or the first report when every breaker's history
// begins inside the window.
func timelineStart(from, to time.Time, histories []BreakerHistory) time.Time {
	first := to
	for _, h := range histories {
		if len(h.Transitions) == 0 || h.Transitions[0].From != "unknown" || !h.Transitions[0].At.After(from) {
			return from
		}
		first = earlier(first, h.Transitions[0].At)
	}
	if len(histories) == 0 {
		return from
	}
	return earlier(first, to.Add(-timelineMinWindow))
}

// breakerSpans turns a breaker's transitions into the states it held,
// clipped to from..to. Before its first report nothing is known, so
// nothing is drawn; a stale breaker's last state ends at its last report.
func breakerSpans(h BreakerHistory, from, to time.Time) []BreakerSpan {
	end := to
	if h.Breaker.Stale && h.Breaker.UpdatedAt.Before(end) {
		end = h.Breaker.UpdatedAt
	}
	trs := h.Transitions
	if len(trs) == 0 {
		// No transition recorded: the state as last reported.
		trs = []store.BreakerTransition{{To: h.Breaker.State, At: h.Breaker.StateSince}}
	}
	var out []BreakerSpan
	for i, tr := range trs {
		s := BreakerSpan{State: tr.To, From: later(tr.At, from), To: end}
		if i+1 < len(trs) {
			s.To = earlier(trs[i+1].At, end)
		}
		// A probe may last under a millisecond: kept when in the window.
		if s.To.After(s.From) || (s.To.Equal(s.From) && !tr.At.Before(from)) {
			out = append(out, s)
		}
	}
	return out
}

// outagesOf merges consecutive open and half-open spans: one outage, from
// its first open until it closed.
func outagesOf(spans []BreakerSpan) []BreakerSpan {
	var out []BreakerSpan
	probes, down := 0, false
	for _, s := range spans {
		if s.State == store.BreakerClosed {
			down = false
			continue
		}
		if !down {
			out = append(out, BreakerSpan{State: "outage", From: s.From})
			probes, down = 0, true
		}
		if s.State == store.BreakerHalfOpen {
			probes++
		}
		o := &out[len(out)-1]
		o.To = s.To
		o.Title = fmt.Sprintf("outage %s – %s (%s), %s", clock(o.From), clock(o.To), Duration(o.To.Sub(o.From)), plural(probes, "probe"))
	}
	return out
}

// timelineTicks labels the axis at round times, at most six of them.
func timelineTicks(from, to time.Time, x func(time.Time) float64) []BreakerTick {
	steps := []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour,
		12 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if to.Sub(from)/s <= 6 {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case step >= 24*time.Hour:
		layout = "Jan 2"
	}
	var out []BreakerTick
	for t := from.UTC().Truncate(step); !t.After(to); t = t.Add(step) {
		if t.Before(from) {
			continue
		}
		tick := BreakerTick{X: x(t), Label: t.UTC().Format(layout), Anchor: "middle"}
		switch {
		case tick.X < 40:
			tick.Anchor = "start"
		case tick.X > timelineW-40:
			tick.Anchor = "end"
		}
		out = append(out, tick)
	}
	return out
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// clock is a time of day in UTC, with seconds: spans are often short.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// coord renders an SVG coordinate.
func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
