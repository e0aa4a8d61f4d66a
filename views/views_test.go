package views

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)


func TestLineChartLaysOutTheWindow(t *testing.T) {
	t.Parallel()
	to := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	from := to.Add(-time.Hour)
	times := []time.Time{to.Add(-30 * time.Minute), to}
	c := NewLineChart("Pending", "chart", from, to, times, CountAxis, Series{Name: "pending", Class: "s1", Values: []float64{40, 180}})
	require.False(t, c.Empty)
	require.Len(t, c.Lines, 1)
	// The first point sits half way across the plot: the window starts an
	// hour back, not at the first sample.
	first := strings.Split(strings.Split(c.Lines[0].Points, " ")[0], ",")
	require.Equal(t, num(padLeft+(chartW-padLeft-padRight)/2), first[0])
	require.Equal(t, "200", c.YTicks[len(c.YTicks)-1].Label, "the axis tops out at a round number")
	require.Equal(t, "180", c.Lines[0].Last)

	empty := NewLineChart("Pending", "chart", from, to, nil, CountAxis)
	require.True(t, empty.Empty)
	var b strings.Builder
	require.NoError(t, LineChartView(empty).Render(context.Background(), &b))
	require.Contains(t, b.String(), `data-testid="chart-empty"`)
}

func TestFormats(t *testing.T) {
	t.Parallel()
	require.Equal(t, "950", Count(950))
	require.Equal(t, "12.3k", Count(12345))
	require.Equal(t, "4.5M", Count(4_500_000))
	require.Equal(t, "1.5 KiB", Bytes(uint64(1536)))
	require.Equal(t, "0 B", Bytes(uint64(0)))
	require.Equal(t, "unlimited", Limit(int64(-1)))
	require.Equal(t, "3m ago", Ago(time.Unix(200, 0), time.Unix(20, 0)))
	require.Equal(t, "never", Ago(time.Now(), time.Time{}))
	require.Equal(t, "<0.1/s", Rate(0.01))
}

func TestBadgeEscapesAndLabels(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	row := StreamRow{Stream: store.Stream{Name: `"><img src=x onerror=alert(1)>`, Health: store.Health{Level: store.HealthCritical}}}
	m := Overview{Page: Page{Now: time.Now(), NATS: NATSBanner{Connected: true}}, Streams: []StreamRow{row}, Sampler: SamplerInfo{FirstCycleDone: true}}
	require.NoError(t, OverviewPage(m).Render(context.Background(), &b))
	out := b.String()
	require.NotContains(t, out, `<img src=x`)
	require.Contains(t, out, `&#34;&gt;&lt;img src=x onerror=alert(1)&gt;`)
	require.Contains(t, out, `data-level="critical"`)
	require.Contains(t, out, `data-testid="health-legend"`)
}
