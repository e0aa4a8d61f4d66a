package web

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
)

type testBundle struct {
	db   *store.DB
	now  time.Time
	nats *NATSState
	mu   *sync.Mutex
	reg  *prometheus.Registry
}

func setup(t *testing.T) (*Server, *testBundle) {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	b := &testBundle{db: db, now: now, mu: &sync.Mutex{}, reg: prometheus.NewRegistry(),
		nats: &NATSState{Connected: true, Since: now.Add(-time.Hour), Server: "nats://127.0.0.1:4222"}}
	srv, err := New(Config{
		Index: db,
		NATSState: func() NATSState {
			b.mu.Lock()
			defer b.mu.Unlock()
			return *b.nats
		},
		SamplerState: func() SamplerState {
			return SamplerState{FirstCycleDone: true, LastCycleAt: now.Add(-2 * time.Second), LastDuration: 40 * time.Millisecond}
		},
		Gatherer:       b.reg,
		SampleInterval: 10 * time.Second,
		Now:            func() time.Time { return now },
		Version:        "test",
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	return srv, b
}

// seed stores two cycles 10 s apart: a healthy stream, a full one with
// discard new, a stalled consumer and a hostile stream name.
func seed(t *testing.T, b *testBundle) {
	t.Helper()
	for i, at := range []time.Time{b.now.Add(-10 * time.Second), b.now} {
		pending := uint64(100 + 50*i)
		lastDelivery := b.now.Add(-10 * time.Minute)
		pct := 97.0
		c := store.Cycle{
			At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{"ORDERS": true, "FULL": true},
			Streams: []store.Stream{
				{Name: "ORDERS", Subjects: []string{"orders.>"}, Retention: "limits", Storage: "file", Replicas: 1,
					Messages: 1000 + uint64(i)*10, Bytes: 64000, LastSeq: 1000 + uint64(i)*10, ConsumerCount: 2,
					Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{"name":"ORDERS"}`)},
				{Name: "FULL", Subjects: []string{"full.>"}, Retention: "limits", Storage: "file", Replicas: 1,
					Messages: 970, Limits: store.StreamLimits{MaxMsgs: 1000, Discard: "new", MsgsUsedPct: &pct},
					Health:    store.Health{Level: store.HealthCritical, Reasons: []string{"97% of max messages with discard new: publishes are about to be rejected"}},
					SampledAt: at, Config: json.RawMessage(`{}`)},
				{Name: `<script>alert(1)</script>`, Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{}`)},
			},
			Consumers: []store.Consumer{
				{Stream: "ORDERS", Name: "billing", NumPending: 0, MaxDeliver: 5, AckWaitSeconds: 30,
					BackOffSeconds: []float64{1, 5}, Delivered: store.SequencePair{ConsumerSeq: 1000 + uint64(i)*10},
					Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{"durable_name":"billing"}`)},
				{Stream: "ORDERS", Name: "shipping", NumPending: pending, NumAckPending: 3,
					Delivered: store.SequencePair{ConsumerSeq: 900 + uint64(i)*5},
					Stalled:   true, StalledSince: &lastDelivery,
					Health: store.Health{Level: store.HealthWarning, Reasons: []string{"stalled"}}, SampledAt: at, Config: json.RawMessage(`{}`)},
			},
		}
		require.NoError(t, b.db.SaveCycle(context.Background(), c))
	}
}

func get(t *testing.T, srv *Server, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

// byTestID returns the text of every element with the given data-testid.
func byTestID(t *testing.T, page, id string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	var out []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "data-testid" && a.Val == id {
					out = append(out, strings.Join(strings.Fields(text(n)), " "))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

func text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
	}
	return b.String()
}

func TestOverviewShowsHealthLagAndStalls(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"3"}, byTestID(t, page, "count-streams"))
	require.Equal(t, []string{"1"}, byTestID(t, page, "count-stalled"))
	require.Len(t, byTestID(t, page, "stream-row"), 3)
	require.Contains(t, strings.Join(byTestID(t, page, "stream-reasons"), "|"), "publishes are about to be rejected")
	require.Len(t, byTestID(t, page, "health-legend"), 1)
	require.Equal(t, []string{"150"}, byTestID(t, page, "lag"), "only consumers with pending messages are listed")
	require.Len(t, byTestID(t, page, "stalled-row"), 1)
	require.Contains(t, byTestID(t, page, "nats-state")[0], "NATS connected")
	require.Empty(t, byTestID(t, page, "nats-down"))

	// Names are escaped, and their links path-escaped.
	require.NotContains(t, page, "<script>alert(1)</script>")
	require.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, page, `href="/streams/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"`)

	// The live fragment is the same content without the layout.
	res, frag := get(t, srv, "/?fragment=live")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, frag, "<html")
	require.Len(t, byTestID(t, frag, "stream-row"), 3)
}

func TestOverviewSaysWhenNATSIsDown(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	b.mu.Lock()
	*b.nats = NATSState{Since: b.now.Add(-90 * time.Second), LastError: "dial tcp 127.0.0.1:4222: connection refused", Server: "nats://127.0.0.1:4222"}
	b.mu.Unlock()
	_, page := get(t, srv, "/")
	down := byTestID(t, page, "nats-down")
	require.Len(t, down, 1)
	require.Contains(t, down[0], "NATS unreachable since 2026-11-26T11:58:30Z (1m ago)")
	require.Contains(t, down[0], "connection refused")
	require.Len(t, byTestID(t, page, "stream-row"), 3, "the last sample is still shown")

	res, body := get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	var ready probeAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &ready))
	require.Equal(t, "not ready", ready.Status)
	require.False(t, ready.Checks["nats"].OK)
	require.True(t, ready.Checks["database"].OK)
	require.True(t, ready.Checks["first_sample"].OK)
}

func TestStreamAndConsumerPages(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/streams/ORDERS")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"1010"}, byTestID(t, page, "stream-messages"))
	require.Len(t, byTestID(t, page, "consumer-row"), 2)
	require.Len(t, byTestID(t, page, "chart-messages"), 1)
	require.Empty(t, byTestID(t, page, "chart-empty"))

	_, page = get(t, srv, "/streams/FULL")
	require.Len(t, byTestID(t, page, "usage-msgs"), 1)

	res, page = get(t, srv, "/streams/ORDERS/consumers/shipping?window=24h")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"150"}, byTestID(t, page, "consumer-pending"))
	require.Equal(t, []string{"3"}, byTestID(t, page, "consumer-ack-pending"))
	require.Len(t, byTestID(t, page, "chart-pending"), 1)

	_, page = get(t, srv, "/streams/ORDERS/consumers/billing")
	require.Equal(t, []string{"5"}, byTestID(t, page, "max-deliver"))
	require.Equal(t, []string{"30s"}, byTestID(t, page, "ack-wait"))
	require.Equal(t, []string{"1s, 5s"}, byTestID(t, page, "backoff"))

	res, page = get(t, srv, "/streams/NOPE")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, byTestID(t, page, "not-found")[0], "has not seen stream NOPE")
	res, _ = get(t, srv, "/streams/ORDERS/consumers/nope")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = get(t, srv, "/streams/ORDERS?window=forever")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
}

func TestAPI(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, body := get(t, srv, "/api/v1/streams")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", strings.Split(res.Header.Get("Content-Type"), ";")[0])
	var streams struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &streams))
	require.Len(t, streams.Items, 3)
	require.Equal(t, "FULL", streams.Items[1]["name"], "sorted by name")
	require.Contains(t, streams.Items[1], "consumer_count")

	_, body = get(t, srv, "/api/v1/streams/ORDERS")
	require.Contains(t, body, `"config":{"name":"ORDERS"}`)

	_, body = get(t, srv, "/api/v1/streams/ORDERS/consumers")
	var consumers struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &consumers))
	require.Len(t, consumers.Items, 2)
	require.Equal(t, "shipping", consumers.Items[1]["name"])
	require.Equal(t, 150.0, consumers.Items[1]["num_pending"])

	_, body = get(t, srv, "/api/v1/streams/ORDERS/consumers/shipping?history=1h")
	var withHistory struct {
		Name    string `json:"name"`
		History []struct {
			NumPending      uint64  `json:"num_pending"`
			DeliveredPerSec float64 `json:"delivered_per_sec"`
		} `json:"history"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &withHistory))
	require.Equal(t, "shipping", withHistory.Name)
	require.Len(t, withHistory.History, 2)
	require.Equal(t, uint64(150), withHistory.History[1].NumPending)
	require.InDelta(t, 0.5, withHistory.History[1].DeliveredPerSec, 1e-9)

	for path, status := range map[string]int{
		"/api/v1/streams/NOPE":                               http.StatusNotFound,
		"/api/v1/streams/NOPE/consumers":                     http.StatusNotFound,
		"/api/v1/streams/ORDERS/consumers/nope":              http.StatusNotFound,
		"/api/v1/streams/ORDERS/consumers/billing?history=x": http.StatusUnprocessableEntity,
	} {
		res, body := get(t, srv, path)
		require.Equal(t, status, res.StatusCode, path)
		var e map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &e), path)
		require.NotEmpty(t, e["error"], path)
	}
}

func TestProbesMetricsHeadersAndAssets(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_gauge", Help: "a test gauge"})
	g.Set(42)
	b.reg.MustRegister(g)

	res, body := get(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, body, "test_gauge 42")

	res, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, body, `"process"`)
	res, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, res.StatusCode, body)

	res, page := get(t, srv, "/")
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
	require.NotContains(t, page, "style=", "no inline styles under the CSP")
	require.NotContains(t, page, "<script>", "no inline scripts under the CSP")

	css := srv.assets.url("app.css")
	res, body = get(t, srv, css)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
	require.Contains(t, res.Header.Get("Content-Type"), "text/css")
	require.Contains(t, body, ".badge")
	res, _ = get(t, srv, "/static/0000000000000000/app.css")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"": time.Hour, "1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute} {
		got, err := parseWindow(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"x", "-1h", "31d", "1.5d", "0s"} {
		_, err := parseWindow(in)
		require.Error(t, err, in)
	}
}

func TestMetricsAppendSampledGaugesPlainAndGzipped(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_gauge", Help: "a test gauge"})
	g.Set(7)
	b.reg.MustRegister(g)
	sampled := "# HELP jetstream_consumer_num_pending p\n# TYPE jetstream_consumer_num_pending gauge\njetstream_consumer_num_pending{consumer_name=\"c\"} 5\n"
	srv.cfg.SampledMetrics = func(w io.Writer, gz bool) error {
		if !gz {
			_, err := io.WriteString(w, sampled)
			return err
		}
		zw := gzip.NewWriter(w)
		io.WriteString(zw, sampled) //nolint:errcheck // memory
		return zw.Close()
	}
	for _, gz := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		var body io.Reader = rec.Body
		if gz {
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
			zr, err := gzip.NewReader(rec.Body)
			require.NoError(t, err)
			body = zr
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(body)
		require.NoError(t, err, "gzip=%v", gz)
		require.Equal(t, 7.0, families["test_gauge"].GetMetric()[0].GetGauge().GetValue())
		require.Equal(t, 5.0, families["jetstream_consumer_num_pending"].GetMetric()[0].GetGauge().GetValue())
	}
}
