package views

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// render renders a component and parses it, failing the test on either.
func render(t *testing.T, c templ.Component) *html.Node {
	t.Helper()
	var b strings.Builder
	require.NoError(t, c.Render(context.Background(), &b))
	doc, err := html.Parse(strings.NewReader(b.String()))
	require.NoError(t, err)
	return doc
}

// byTestID returns the elements with the given data-testid, in document order.
func byTestID(doc *html.Node, id string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "data-testid") == id {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is an element's text with whitespace collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// elements are the elements named tag under n, in document order.
func elements(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// childTexts is the text of each child element named tag.
func childTexts(n *html.Node, tag string) []string {
	var out []string
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == tag {
			out = append(out, text(c))
		}
	}
	return out
}

func testPage() Page {
	return Page{Title: "Overview", Nav: "overview", Version: "v1.2.3", CSSURL: "/static/abc/app.css", JSURL: "/static/def/app.js",
		RefreshSeconds: 10, LiveURL: "/?fragment=live", Now: testNow,
		NATS: NATSBanner{Connected: true, Since: testNow.Add(-time.Hour), Server: "nats://n1:4222", ServerName: "n1"}}
}

func testOverview() Overview {
	at := testNow.Add(-5 * time.Second)
	stalledSince := testNow.Add(-12 * time.Minute)
	return Overview{
		Page:   testPage(),
		Counts: store.Counts{Streams: 3, Consumers: 2, Messages: 12345, Bytes: 2 << 20, ConsumersStalled: 1, StreamsByHealth: map[string]int{"critical": 1, "ok": 2}},
		Table: StreamTable{Total: 3, From: 1, Sort: "health", Rows: []StreamRow{
			{Stream: store.Stream{Name: "FULL", Health: store.Health{Level: store.HealthCritical,
				Reasons: []string{"97% of max messages with discard new: publishes are about to be rejected"}}, SampledAt: at}},
			{Stream: store.Stream{Name: "<script>alert(1)</script>", Health: store.Health{Level: store.HealthOK}, SampledAt: at}},
			{Stream: store.Stream{Name: "OLD", Health: store.Health{Level: store.HealthOK}, SampledAt: testNow.Add(-time.Hour)}, Stale: true},
		}},
		Triage: Triage{Problems: []Problem{{Kind: ProblemStalled, Severity: store.HealthWarning, Subject: "ORDERS / shipping",
			Text: "15 000 pending and nothing delivered for 12m", Link: "/streams/ORDERS/consumers/shipping", Since: stalledSince}}},
		TopLagging: []ConsumerRow{{Consumer: store.Consumer{Stream: "ORDERS", Name: "shipping", NumPending: 15000}}},
		Sampler:    SamplerInfo{FirstCycleDone: true, LastCycleAt: at, LastDuration: 40 * time.Millisecond, Interval: 10 * time.Second, JSZ: "not connected as a system account user"},
		StallAfter: 5 * time.Minute,
	}
}

func TestOverviewExplainsHealth(t *testing.T) {
	t.Parallel()
	doc := render(t, Document(testPage(), OverviewLive(testOverview())))

	legend := byTestID(doc, "health-legend")
	require.Len(t, legend, 1)
	for _, want := range []string{"ok", "warning", "critical", "stale", "Green", "Amber", "Red", "Grey", "nothing was acknowledged for 5m", "falling behind", "(30s)"} {
		require.Contains(t, text(legend[0]), want)
	}

	rows := byTestID(doc, "stream-row")
	require.Len(t, rows, 3)
	require.Equal(t, "critical", attr(byTestID(rows[0], "health-badge")[0], "data-level"))
	require.Equal(t, "critical", text(byTestID(rows[0], "health-badge")[0]), "the level is written, not only coloured")
	require.Contains(t, text(byTestID(rows[0], "stream-reasons")[0]), "publishes are about to be rejected")
	require.Equal(t, "stale", attr(byTestID(rows[2], "health-badge")[0], "data-level"), "stale wins over the sampled level")
	require.Contains(t, text(byTestID(rows[2], "stream-reasons")[0]), "not sampled since 1h ago")

	require.Equal(t, "1 critical", text(byTestID(doc, "count-unhealthy")[0]))
	// text folds the narrow no-break space into a space; TestFormats has it.
	require.Equal(t, "12 345", text(byTestID(doc, "count-messages")[0]), "numbers in full, grouped")
	require.Equal(t, "15 000", text(byTestID(doc, "lag")[0]))
	problems := byTestID(doc, "problem")
	require.Len(t, problems, 1)
	require.Equal(t, "stalled", attr(problems[0], "data-kind"))
	require.Contains(t, text(problems[0]), "ORDERS / shipping")
	require.Contains(t, text(problems[0]), "since 12m ago")
	require.Contains(t, text(byTestID(doc, "jsz-note")[0]), "not connected as a system account user")
	require.Contains(t, text(byTestID(doc, "jsz-note")[0]), "--system-creds")
	require.Equal(t, "jetwatch v1.2.3", text(byTestID(doc, "footer")[0]))
	require.Contains(t, text(byTestID(doc, "nats-state")[0]), "NATS connected")
	require.Empty(t, byTestID(doc, "nats-down"))
}

func TestHostileNamesAreEscaped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	require.NoError(t, Document(testPage(), OverviewLive(testOverview())).Render(context.Background(), &b))
	out := b.String()
	require.NotContains(t, out, "<script>alert(1)</script>")
	require.Contains(t, out, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, out, `href="/streams/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"`)

	doc, err := html.Parse(strings.NewReader(out))
	require.NoError(t, err)
	// The only script is the external one: nothing inline, nothing injected.
	var scripts int
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			scripts++
			require.Equal(t, "/static/def/app.js", attr(n, "src"))
			require.Nil(t, n.FirstChild)
		}
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				require.False(t, strings.HasPrefix(a.Key, "on"), "event handler attribute %s", a.Key)
				require.NotEqual(t, "style", a.Key, "inline style")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	require.Equal(t, 1, scripts)
	name := byTestID(doc, "stream-row")[1]
	require.Equal(t, "<script>alert(1)</script>", attr(name, "data-stream"))
}

func TestNATSDownBanner(t *testing.T) {
	t.Parallel()
	p := testPage()
	p.NATS = NATSBanner{Since: testNow.Add(-90 * time.Second), LastError: "dial tcp 10.0.0.1:4222: connection refused", Server: "nats://n1:4222"}
	doc := render(t, Fragment(p, OverviewLive(testOverview())))
	down := byTestID(doc, "nats-down")
	require.Len(t, down, 1, "the fragment carries the banner, so live refresh shows an outage")
	require.Contains(t, text(down[0]), "NATS unreachable since 1m ago")
	when := elements(down[0], "time")
	require.Len(t, when, 1)
	require.Equal(t, "2026-11-26 11:58:30 UTC", attr(when[0], "title"), "the absolute time, zone named, on hover")
	require.Equal(t, "2026-11-26T11:58:30Z", attr(when[0], "datetime"))
	require.Contains(t, text(down[0]), "connection refused")
	require.Contains(t, text(down[0]), "may be stale")
	require.Len(t, byTestID(doc, "stream-row"), 3, "the last sample is still shown")
}

func TestStreamPage(t *testing.T) {
	t.Parallel()
	used := 97.0
	m := StreamPage{
		Page: testPage(),
		Stream: StreamRow{Stream: store.Stream{Name: "FULL", Subjects: []string{"full.>", "fuller.*"}, Replicas: 3, Messages: 970,
			Limits:  store.StreamLimits{MaxMsgs: 1000, MaxBytes: -1, MaxAgeSeconds: 3600, Discard: "new", MsgsUsedPct: &used},
			Cluster: &store.Cluster{Name: "c1", Leader: "n1", Replicas: []store.Replica{{Name: "n2", Current: true}, {Name: "n3", Offline: true, Lag: 1200}}},
			Health:  store.Health{Level: store.HealthCritical, Reasons: []string{"replica n3 is offline"}}, SampledAt: testNow}},
		Window: "1h", Windows: []string{"1h", "24h", "7d"},
		Messages: NewLineChart("Messages", "chart-messages", testNow.Add(-time.Hour), testNow, nil, CountAxis),
		Consumers: []ConsumerRow{{Consumer: store.Consumer{Stream: "FULL", Name: "odd/name?", NumPending: 5, Health: store.Health{Level: store.HealthOK}},
			Spark: NewSparkline([]uint64{1, 5, 3})}},
		ConfigRaw: "{\n  \"name\": \"FULL\"\n}",
	}
	doc := render(t, StreamLive(m))
	require.Equal(t, "full.>, fuller.*", text(byTestID(doc, "stream-subjects")[0]))
	meter := byTestID(doc, "usage-msgs")
	require.Len(t, meter, 1)
	require.Equal(t, "meter", meter[0].Data)
	require.Equal(t, "97.0", attr(meter[0], "value"))
	require.Equal(t, "1h", text(byTestID(doc, "max-age")[0]), "a human duration, not Go's 1h0m0s")
	require.Equal(t, "n1", text(byTestID(doc, "leader")[0]))
	replicas := byTestID(doc, "replica-row")
	require.Len(t, replicas, 3)
	require.Equal(t, "critical", attr(replicas[2], "data-level"))
	require.Len(t, byTestID(doc, "chart-empty"), 1, "no samples yet in this window")
	require.Len(t, byTestID(doc, "sparkline"), 1)
	require.Equal(t, "peak 5", text(byTestID(doc, "spark-scale")[0]), "a sparkline says its scale")
	require.Equal(t, []string{"1h", "24h", "7d"}, childTexts(byTestID(doc, "windows")[0], "a"))
	row := byTestID(doc, "consumer-row")[0]
	var href string
	for n := row.FirstChild.FirstChild; n != nil; n = n.NextSibling {
		if n.Data == "a" {
			href = attr(n, "href")
		}
	}
	require.Equal(t, "/streams/FULL/consumers/odd%2Fname%3F", href)
	require.Contains(t, text(byTestID(doc, "raw-config")[0]), `"name": "FULL"`)
}

func TestConsumerPage(t *testing.T) {
	t.Parallel()
	since := testNow.Add(-10 * time.Minute)
	until := testNow.Add(time.Hour)
	m := ConsumerPage{
		Page: testPage(),
		Consumer: ConsumerRow{Consumer: store.Consumer{Stream: "ORDERS", Name: "billing", Durable: true, FilterSubjects: []string{"orders.eu", "orders.us"},
			MaxDeliver: 5, AckWaitSeconds: 30, BackOffSeconds: []float64{1, 5, 30}, MaxAckPending: -1, NumPending: 150,
			Paused: true, PauseUntil: &until, Stalled: true, StalledSince: &since, SampledAt: testNow, Health: store.Health{Level: store.HealthWarning}}},
		Window: "24h", Windows: []string{"1h", "24h", "7d"},
		Pending: NewLineChart("Pending", "chart-pending", testNow.Add(-time.Hour), testNow, []time.Time{testNow.Add(-time.Minute), testNow}, CountAxis,
			Series{Name: "pending", Class: "s1", Values: []float64{100, 150}}, Series{Name: "ack pending", Class: "s2", Values: []float64{1, 2}}),
		Rates: NewLineChart("Rates", "chart-rates", testNow.Add(-time.Hour), testNow, []time.Time{testNow}, RateAxis,
			Series{Name: "delivered/s", Class: "s1", Values: []float64{0.25}}),
	}
	doc := render(t, ConsumerLive(m))
	require.Equal(t, "150", text(byTestID(doc, "consumer-pending")[0]))
	require.Equal(t, "pull, durable", text(byTestID(doc, "consumer-kind")[0]))
	require.Equal(t, "orders.eu, orders.us", text(byTestID(doc, "filter-subjects")[0]))
	require.Equal(t, "1s, 5s, 30s", text(byTestID(doc, "backoff")[0]))
	require.Equal(t, "unlimited", text(byTestID(doc, "max-ack-pending")[0]))
	require.Contains(t, text(byTestID(doc, "paused")[0]), "until in 1h")
	require.Contains(t, text(byTestID(doc, "paused-until")[0]), "Paused until "+Absolute(until))
	require.Contains(t, text(byTestID(doc, "paused-until")[0]), "that is expected, not a problem of lag")
	require.Empty(t, byTestID(doc, "consumer-pause"), "no pause form without pausing available")
	require.Equal(t, "since 10m ago", text(byTestID(doc, "stalled-since")[0]))
	chart := byTestID(doc, "chart-pending")[0]
	require.Equal(t, []string{"pending: 150", "ack pending: 2"}, childTexts(byTestID(chart, "chart-legend")[0], "li"))
	var polylines, descs int
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.ElementNode && n.Data == "polyline":
			polylines++
		case n.Type == html.ElementNode && n.Data == "desc":
			descs++
			require.Contains(t, text(n), "latest: pending 150, ack pending 2")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(chart)
	require.Equal(t, 2, polylines)
	require.Equal(t, 1, descs)
	// The active window is marked for assistive technology too.
	for n := byTestID(doc, "windows")[0].FirstChild; n != nil; n = n.NextSibling {
		if text(n) == "24h" {
			require.Equal(t, "page", attr(n, "aria-current"))
			require.Equal(t, "/streams/ORDERS/consumers/billing?window=24h", attr(n, "href"))
		} else {
			require.Empty(t, attr(n, "aria-current"))
		}
	}
}

func TestLineChartLaysOutTheWindow(t *testing.T) {
	t.Parallel()
	to := testNow
	from := to.Add(-time.Hour)
	times := []time.Time{to.Add(-30 * time.Minute), to}
	c := NewLineChart("Pending", "chart", from, to, times, CountAxis, Series{Name: "pending", Class: "s1", Values: []float64{40, 180}})
	require.False(t, c.Empty)
	require.Len(t, c.Lines, 1)
	// History is shorter than the window: the axis starts at the first
	// sample, not an hour back, and says so.
	first := strings.Split(strings.Split(c.Lines[0].Points, " ")[0], ",")
	require.Equal(t, num(padLeft), first[0])
	require.Contains(t, c.Note, "History starts 30m ago")
	require.Contains(t, c.Note, "not the whole 1h")
	full := NewLineChart("Pending", "chart", from, to, []time.Time{from.Add(time.Minute), to}, CountAxis, Series{Name: "pending", Class: "s1", Values: []float64{1, 2}})
	require.Empty(t, full.Note, "history that nearly fills the window spans it")
	require.Equal(t, "11:00", full.XTicks[0].Label)
	require.Equal(t, "200", c.YTicks[len(c.YTicks)-1].Label, "the axis tops out at a round number")
	require.Equal(t, "0", c.YTicks[0].Label)
	require.Equal(t, "180", c.Lines[0].Last)
	require.Equal(t, "11:30", c.XTicks[0].Label)
	require.Equal(t, "12:00", c.XTicks[len(c.XTicks)-1].Label)

	week := NewLineChart("Bytes", "chart", to.Add(-7*24*time.Hour), to, []time.Time{to.Add(-7 * 24 * time.Hour), to}, BytesAxis, Series{Name: "bytes", Class: "s1", Values: []float64{3 << 20, 5 << 20}})
	require.Equal(t, "Nov 19 12:00", week.XTicks[0].Label, "a week is labelled with dates")
	require.Equal(t, "6 MiB", week.YTicks[len(week.YTicks)-1].Label, "sizes round in binary units")
	require.Equal(t, "1.5 MiB", week.YTicks[1].Label)

	rates := NewLineChart("Rates", "chart", from, to, times, RateAxis, Series{Name: "acked/s", Class: "s1", Values: []float64{0.1, 0.3}})
	require.Equal(t, "0.125/s", rates.YTicks[1].Label, "small rates keep their fractions")
	busy := NewLineChart("Rates", "chart", from, to, times, RateAxis, Series{Name: "delivered/s", Class: "s1", Values: []float64{11.5, 11.988}})
	require.Equal(t, "12.0/s", busy.Lines[0].Last, "the legend writes a rate as the rest of the page does")

	empty := NewLineChart("Pending", "chart", from, to, nil, CountAxis)
	require.True(t, empty.Empty)
	doc := render(t, LineChartView(empty))
	require.Equal(t, "No samples yet in this window.", text(byTestID(doc, "chart-empty")[0]))
}

func TestSparkline(t *testing.T) {
	t.Parallel()
	s := NewSparkline([]uint64{0, 10, 5})
	require.False(t, s.Empty)
	require.Equal(t, "10", s.Max)
	require.Len(t, strings.Fields(s.Points), 3)
	require.Len(t, byTestID(render(t, SparklineView(NewSparkline(nil))), "spark-empty"), 1)
}

func TestFormats(t *testing.T) {
	t.Parallel()
	// One number format: in full, grouped by a narrow no-break space.
	require.Equal(t, "950", Count(950))
	require.Equal(t, "12\u202f345", Count(12345))
	require.Equal(t, "4\u202f500\u202f000", Count(4_500_000))
	require.Equal(t, "-1\u202f200", Count(-1200))
	require.Equal(t, "0", Count(0.0))
	require.Equal(t, "2.5", Count(2.5))
	require.Equal(t, "1\u202f235", Count(1234.6))
	require.Equal(t, "18\u202f446\u202f744\u202f073\u202f709\u202f551\u202f616", Count(uint64(1<<64-1)))
	require.Equal(t, "12345", Exact(12345), "plain digits for titles and attributes")
	require.Equal(t, "1.5 KiB", Bytes(uint64(1536)))
	require.Equal(t, "0 B", Bytes(uint64(0)))
	require.Equal(t, "unlimited", Limit(int64(-1)))
	require.Equal(t, "10\u202f000", Limit(int64(10_000)))
	require.Equal(t, "unlimited", LimitBytes(int64(-1)))
	require.Equal(t, "1 MiB", LimitBytes(int32(1<<20)))
	require.Equal(t, "<0.1/s", Rate(0.01))
	require.Equal(t, "8.3/s", Rate(8.26))
	require.Equal(t, "1\u202f250/s", Rate(1250))

	// Relative times, and absolute ones with their zone named.
	require.Equal(t, "3m ago", Ago(time.Unix(200, 0), time.Unix(20, 0)))
	require.Equal(t, "in 2h", Ago(time.Unix(0, 0), time.Unix(7300, 0)))
	require.Equal(t, "never", Ago(time.Now(), time.Time{}))
	require.Equal(t, "2026-11-26 12:00:00 UTC", Absolute(testNow.In(time.FixedZone("CET", 3600))))

	// Human durations, never Go's 24h0m0s.
	for d, want := range map[time.Duration]string{
		0: "0s", 350 * time.Millisecond: "350ms", 1500 * time.Millisecond: "1.5s", 42 * time.Second: "42s",
		90 * time.Second: "1m 30s", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h 30m",
		24 * time.Hour: "1d", 30 * time.Hour: "1d 6h", 7 * 24 * time.Hour: "7d",
		time.Hour + 59*time.Minute + 59*time.Second: "2h", 23*time.Hour + 59*time.Minute + 40*time.Second: "1d",
		-5 * time.Second: "-5s",
	} {
		require.Equal(t, want, Duration(d), "%d", d)
	}
	require.Equal(t, "—", Seconds(0))
	require.Equal(t, "7d", Seconds(7*86400))
}
