package web

import (
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
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
)

// testBundle is what a test may change or inspect behind a Server.
type testBundle struct {
	db  *store.DB
	now time.Time
	reg *prometheus.Registry
	log *strings.Builder // everything logged, as text

	mu      sync.Mutex
	nats    NATSState
	sampler store.SamplerState
}

func (b *testBundle) setNATS(n NATSState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nats = n
}

func (b *testBundle) setSampler(s store.SamplerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sampler = s
}

// lockedWriter lets parallel handlers log into one builder.
type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// testNow is the tests' clock: the time of the last sample seed stores.
var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// setup builds a Server over a real SQLite file in t.TempDir(); opts may
// change the Config before New.
func setup(t testing.TB, opts ...func(*Config)) (*Server, *testBundle) {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	now := testNow
	b := &testBundle{db: db, now: now, reg: prometheus.NewRegistry(), log: &strings.Builder{},
		nats:    NATSState{Connected: true, Since: now.Add(-time.Hour), Server: "nats://127.0.0.1:4222", ServerName: "n1"},
		sampler: store.SamplerState{FirstCycleDone: true, LastCycleAt: now.Add(-2 * time.Second), LastDuration: 40 * time.Millisecond},
	}
	var logMu sync.Mutex
	cfg := Config{
		Index: db,
		NATSState: func() NATSState {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.nats
		},
		SamplerState: func() store.SamplerState {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.sampler
		},
		Gatherer:       b.reg,
		SampleInterval: 10 * time.Second,
		Now:            func() time.Time { return now },
		Version:        "test",
		Logger:         slog.New(slog.NewTextHandler(lockedWriter{&logMu, b.log}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	return srv, b
}

// Names NATS allows that need escaping in a URL.
const (
	oddStream   = "weird?&#%name"
	oddConsumer = "c%2F1+é"
)

// seed stores two cycles 10 s apart, as the sampler would: a replicated
// healthy stream with a lagging, stalled consumer, a full stream with
// discard new, a stream with an odd name, a hostile name, and two servers.
func seed(t testing.TB, b *testBundle) {
	t.Helper()
	for i, at := range []time.Time{b.now.Add(-10 * time.Second), b.now} {
		step := uint64(i)
		lastDelivery := b.now.Add(-10 * time.Minute)
		firstMsg, lastMsg := b.now.Add(-48*time.Hour), at
		used := 97.0
		c := store.Cycle{
			At: at, StreamsComplete: true,
			ConsumersComplete: map[string]bool{"ORDERS": true, "FULL": true, oddStream: true},
			Streams: []store.Stream{
				{Name: "ORDERS", Subjects: []string{"orders.>"}, Retention: "limits", Storage: "file", Replicas: 3,
					Created: b.now.Add(-72 * time.Hour), Messages: 1000 + step*10, Bytes: 64000 + step*640,
					FirstSeq: 1, LastSeq: 1000 + step*10, FirstTime: &firstMsg, LastTime: &lastMsg, NumSubjects: 4, ConsumerCount: 2,
					Limits: store.StreamLimits{MaxMsgs: -1, MaxBytes: 1 << 30, MaxAgeSeconds: 7 * 86400, MaxMsgSize: -1,
						MaxMsgsPerSubject: -1, MaxConsumers: -1, Discard: "old"},
					Cluster: &store.Cluster{Name: "east", Leader: "n1", Replicas: []store.Replica{
						{Name: "n2", Current: true, ActiveSeconds: 0.1}, {Name: "n3", Current: false, Lag: 42, ActiveSeconds: 2}}},
					InPerSec: 1, Health: store.Health{Level: store.HealthWarning, Reasons: []string{"replica n3 is 42 operations behind", "consumer shipping is stalled"}},
					SampledAt: at, Config: json.RawMessage(`{"name":"ORDERS","subjects":["orders.>"],"num_replicas":3}`)},
				{Name: "FULL", Subjects: []string{"full.>"}, Retention: "workqueue", Storage: "file", Replicas: 1,
					Messages: 970, Bytes: 97000, FirstSeq: 31, LastSeq: 1000,
					Limits:    store.StreamLimits{MaxMsgs: 1000, MaxBytes: -1, Discard: "new", MsgsUsedPct: &used},
					Health:    store.Health{Level: store.HealthCritical, Reasons: []string{"97% of max messages with discard new: publishes are about to be rejected"}},
					SampledAt: at, Config: json.RawMessage(`{"name":"FULL","max_msgs":1000,"discard":"new"}`)},
				{Name: oddStream, Subjects: []string{"odd.>"}, Retention: "limits", Storage: "memory", Replicas: 1, ConsumerCount: 1,
					Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{}`)},
				{Name: `<script>alert(1)</script>`, Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{}`)},
			},
			Consumers: []store.Consumer{
				{Stream: "ORDERS", Name: "billing", Durable: true, FilterSubjects: []string{"orders.created"},
					DeliverPolicy: "all", AckPolicy: "explicit", ReplayPolicy: "instant",
					MaxDeliver: 5, AckWaitSeconds: 30, BackOffSeconds: []float64{1, 5}, MaxAckPending: 1000,
					Delivered:       store.SequencePair{ConsumerSeq: 1000 + step*10, StreamSeq: 1000 + step*10, LastActive: &lastMsg},
					AckFloor:        store.SequencePair{ConsumerSeq: 995 + step*10, StreamSeq: 995 + step*10},
					DeliveredPerSec: 1, AckedPerSec: 1,
					Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{"durable_name":"billing","max_deliver":5}`)},
				{Stream: "ORDERS", Name: "shipping", Durable: true, AckPolicy: "explicit", MaxDeliver: -1, AckWaitSeconds: 30, MaxAckPending: 1000,
					NumPending: 100 + 50*step, NumAckPending: 3, NumRedelivered: 1,
					Delivered: store.SequencePair{ConsumerSeq: 900 + step*5, StreamSeq: 900 + step*5, LastActive: &lastDelivery},
					AckFloor:  store.SequencePair{ConsumerSeq: 897, StreamSeq: 897},
					Stalled:   true, StalledSince: &lastDelivery,
					Health:    store.Health{Level: store.HealthWarning, Reasons: []string{"stalled: 150 pending and nothing delivered for 10m"}},
					SampledAt: at, Config: json.RawMessage(`{"durable_name":"shipping"}`)},
				{Stream: oddStream, Name: oddConsumer, NumPending: 7, Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{}`)},
			},
			Servers: []store.Server{
				{Name: "n1", Cluster: "east", Version: "2.15.2", MetaLeader: "n1", Storage: 1 << 20, MaxStorage: 1 << 30, Streams: 4, Consumers: 3,
					Health: store.Health{Level: store.HealthOK}, SampledAt: at},
				{Name: "n3", Cluster: "east", Version: "2.15.2", MetaLeader: "n1", APIErrors: 3, APITotal: 1000,
					Health: store.Health{Level: store.HealthWarning, Reasons: []string{"3 API errors"}}, SampledAt: at},
			},
		}
		require.NoError(t, b.db.SaveCycle(context.Background(), c))
	}
}

// get serves one GET request.
func get(t testing.TB, srv *Server, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

// parse parses a page.
func parse(t testing.TB, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	return doc
}

// nodes returns the elements with the given data-testid.
func nodes(n *html.Node, id string) []*html.Node {
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
	walk(n)
	return out
}

// byTestID returns the text, whitespace collapsed, of every element of a
// page with the given data-testid.
func byTestID(t testing.TB, page, id string) []string {
	t.Helper()
	var out []string
	for _, n := range nodes(parse(t, page), id) {
		out = append(out, text(n))
	}
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

// links returns the href of every link inside n.
func links(n *html.Node) []string {
	var out []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			out = append(out, attr(n, "href"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// liveURL is the data-live URL of a page's live region.
func liveURL(t *testing.T, page string) string {
	t.Helper()
	var url string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "id") == "live" {
			url = attr(n, "data-live")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(parse(t, page))
	return url
}

// slogTo is a debug-level text logger into b.
func slogTo(b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{&sync.Mutex{}, b}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// cells is the text of each cell of a table row.
func cells(row *html.Node) []string {
	var out []string
	for c := row.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
			out = append(out, text(c))
		}
	}
	return out
}
