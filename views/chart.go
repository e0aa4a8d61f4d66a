package views

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH            = 720.0, 220.0
	padLeft, padRight, padTop = 72.0, 16.0, 12.0
	padBottom                 = 24.0
	sparkW, sparkH            = 120.0, 24.0
	chartYTicks               = 4
)

// Axis says how a chart's y axis is scaled and labelled.
type Axis struct {
	// Format renders a value for tick labels, which may need fractions
	// (0.125) to tell ticks of small values apart.
	Format func(float64) string
	// Value renders the latest value in the legend, as the rest of the
	// page writes such a number. Defaults to Format.
	Value func(float64) string
	// Binary rounds the axis top to powers of 1024 (sizes), not of 10.
	Binary bool
}

// The axes charts use.
var (
	CountAxis = Axis{Format: axisNumber, Value: func(v float64) string { return Count(v) }}
	RateAxis  = Axis{Format: func(v float64) string { return axisNumber(v) + "/s" }, Value: Rate}
	BytesAxis = Axis{Format: func(v float64) string { return Bytes(v) }, Binary: true}
)

// Series is one named line of a chart; Class picks its colour in app.css.
type Series struct {
	Name   string
	Class  string
	Values []float64
}

// LineChart is a server-rendered SVG line chart over time.
type LineChart struct {
	Title  string
	TestID string
	W, H   float64
	Lines  []ChartLine
	YTicks []ChartTick
	XTicks []ChartTick
	Empty  bool
	// Desc says in words what the chart shows, for screen readers.
	Desc string
	// Note says when the axis spans less than the window asked for,
	// because history starts later.
	Note string
	// Spans mark periods on the time axis: a breaker open.
	Spans []ChartSpan
	// t0 and t1 are the ends of the time axis, to place spans.
	t0, t1 time.Time
}

// ChartSpan is a period marked on a chart's time axis, with its legend.
type ChartSpan struct {
	X, W  float64
	Class string
	// Label names it in the legend and its title says when.
	Label, Title string
}

// TimeSpan is a period to mark on a chart: Class picks its colour
// (open, half-open), Label its legend entry.
type TimeSpan struct {
	From, To time.Time
	Class    string
	Label    string
}

// ChartLine is a series turned into polyline points.
type ChartLine struct {
	Name, Class, Points string
	// Last is the latest value, formatted.
	Last string
}

// ChartTick is an axis label at a position; Anchor is its SVG text-anchor,
// so the labels at the edges stay inside the chart.
type ChartTick struct {
	Pos    float64
	Label  string
	Anchor string
}

// NewLineChart lays out series sharing the times axis. The axis ends at
// to, so an operator sees how recent the data is; it starts at from, or at
// the first sample when history is shorter than the window, so three
// minutes of data fill the chart rather than a sliver of a 1 h axis.
func NewLineChart(title, testID string, from, to time.Time, times []time.Time, axis Axis, series ...Series) LineChart {
	c := LineChart{Title: title, TestID: testID, W: chartW, H: chartH}
	if len(times) == 0 {
		c.Empty = true
		c.Desc = "No samples yet in this window."
		return c
	}
	maxV := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			maxV = math.Max(maxV, v)
		}
	}
	top := niceCeil(maxV)
	if axis.Binary {
		top = niceCeilBinary(maxV)
	}
	plotW := chartW - padLeft - padRight
	plotH := chartH - padTop - padBottom
	t0 := from
	if times[0].Before(t0) || times[0].Sub(from) > to.Sub(from)/10 {
		t0 = times[0]
		if times[0].After(from) {
			c.Note = "History starts " + Ago(to, times[0]) + ": the time axis spans the " + Duration(to.Sub(t0)) +
				" there are, not the whole " + Duration(to.Sub(from)) + "."
		}
	}
	c.t0, c.t1 = t0, to
	span := to.Sub(t0).Seconds()
	x := func(t time.Time) float64 {
		if span <= 0 {
			return padLeft + plotW/2
		}
		return padLeft + plotW*t.Sub(t0).Seconds()/span
	}
	y := func(v float64) float64 { return padTop + plotH - plotH*v/top }
	for _, s := range series {
		var b strings.Builder
		for i, v := range s.Values {
			if i >= len(times) {
				break
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(num(x(times[i])))
			b.WriteByte(',')
			b.WriteString(num(y(v)))
		}
		last := ""
		if n := min(len(s.Values), len(times)); n > 0 {
			value := axis.Value
			if value == nil {
				value = axis.Format
			}
			last = value(s.Values[n-1])
		}
		c.Lines = append(c.Lines, ChartLine{Name: s.Name, Class: s.Class, Points: b.String(), Last: last})
	}
	for i := 0; i <= chartYTicks; i++ {
		v := top * float64(i) / chartYTicks
		c.YTicks = append(c.YTicks, ChartTick{Pos: y(v), Label: axis.Format(v), Anchor: "end"})
	}
	layout := "15:04"
	switch {
	case span > 36*3600:
		layout = "Jan 2 15:04"
	case span < 600:
		layout = "15:04:05"
	}
	if span <= 0 {
		c.XTicks = append(c.XTicks, ChartTick{Pos: x(t0), Label: t0.UTC().Format(layout), Anchor: "middle"})
	}
	for i := 0; i <= 4 && span > 0; i++ {
		t := t0.Add(time.Duration(float64(i) / 4 * span * float64(time.Second)))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		c.XTicks = append(c.XTicks, ChartTick{Pos: x(t), Label: t.UTC().Format(layout), Anchor: anchor})
	}
	var desc strings.Builder
	desc.WriteString("From " + Absolute(t0) + " to " + Absolute(to) + ", latest:")
	for i, l := range c.Lines {
		if i > 0 {
			desc.WriteByte(',')
		}
		desc.WriteString(" " + l.Name + " " + l.Last)
	}
	c.Desc = desc.String() + "."
	return c
}

// WithSpans marks periods on the chart's time axis, clipped to it. A span
// with a zero To lasts until the end of the axis (still open).
func (c LineChart) WithSpans(spans []TimeSpan) LineChart {
	if c.Empty || !c.t1.After(c.t0) {
		return c
	}
	plotW := chartW - padLeft - padRight
	total := c.t1.Sub(c.t0).Seconds()
	x := func(t time.Time) float64 {
		return padLeft + plotW*math.Min(math.Max(t.Sub(c.t0).Seconds()/total, 0), 1)
	}
	for _, sp := range spans {
		to := sp.To
		if to.IsZero() || to.After(c.t1) {
			to = c.t1
		}
		if !to.After(c.t0) || !sp.From.Before(c.t1) {
			continue
		}
		x0, x1 := x(sp.From), x(to)
		title := sp.Label + " from " + Absolute(sp.From)
		if sp.To.IsZero() {
			title += ", still"
		} else {
			title += " to " + Absolute(sp.To)
		}
		c.Spans = append(c.Spans, ChartSpan{X: x0, W: math.Max(x1-x0, 1), Class: sp.Class, Label: sp.Label, Title: title})
	}
	return c
}

// SpanLegend is each kind of span once, for the legend.
func (c LineChart) SpanLegend() []ChartSpan {
	var out []ChartSpan
	seen := map[string]bool{}
	for _, s := range c.Spans {
		if !seen[s.Class+s.Label] {
			seen[s.Class+s.Label] = true
			out = append(out, s)
		}
	}
	return out
}

// plotTop and plotHeight place spans over the plot area.
func plotTop() float64    { return padTop }
func plotHeight() float64 { return chartH - padTop - padBottom }

// Sparkline is a tiny line without axes; its scale is written beside it.
type Sparkline struct {
	W, H   float64
	Points string
	// Max is the peak, formatted; the line's top is the peak and its
	// bottom zero.
	Max   string
	Empty bool
}

// NewSparkline lays out values left to right, scaled to their maximum.
func NewSparkline(values []uint64) Sparkline {
	s := Sparkline{W: sparkW, H: sparkH}
	if len(values) == 0 {
		s.Empty = true
		return s
	}
	var maxV uint64
	for _, v := range values {
		maxV = max(maxV, v)
	}
	top := math.Max(float64(maxV), 1)
	var b strings.Builder
	for i, v := range values {
		xv := sparkW / 2
		if len(values) > 1 {
			xv = sparkW * float64(i) / float64(len(values)-1)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(num(xv) + "," + num(sparkH-1-(sparkH-2)*float64(v)/top))
	}
	s.Points = b.String()
	s.Max = Count(maxV)
	return s
}

// Bars is a small bar chart of counts, such as dead letters per minute.
type Bars struct {
	W, H  float64
	Rects []BarRect
	// Label says the scale and the busiest bucket.
	Label string
}

// BarRect is one bar.
type BarRect struct{ X, Y, W, H float64 }

// NewBars lays out counts left to right, scaled to the largest.
func NewBars(counts []int) Bars {
	b := Bars{W: float64(len(counts)) * 2, H: sparkH}
	top := 0
	for _, n := range counts {
		top = max(top, n)
	}
	for i, n := range counts {
		if n == 0 {
			continue
		}
		h := math.Max(sparkH*float64(n)/float64(top), 1)
		b.Rects = append(b.Rects, BarRect{X: float64(i) * 2, Y: sparkH - h, W: 1.6, H: h})
	}
	b.Label = "per minute over the last hour, oldest left; busiest minute " + Count(top)
	return b
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so axis labels
// are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}

// niceCeilBinary rounds a size up to a round number of its binary unit
// (200 KiB, not 195.3 KiB), so byte axis labels are round too.
func niceCeilBinary(v float64) float64 {
	if v <= 0 {
		return 1024
	}
	unit := 1.0
	for v/unit >= 1024 {
		unit *= 1024
	}
	// Four ticks: a top divisible by 4 in the unit keeps them round.
	top := niceCeil(v / unit)
	if top < 4 {
		top = 4
	} else if top == 5 || top == 50 || top == 500 {
		top *= 1.2 // 6, 60, 600: 1.5, 15, 150 per tick
	}
	return top * unit
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// axisNumber is Count, but keeps the small fractions axis ticks of low
// values need (0.125, not 0.1).
func axisNumber(v float64) string {
	if v == math.Trunc(v) || math.Abs(v) >= 1e4 {
		return Count(v)
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
