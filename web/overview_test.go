package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
)

func TestOverviewShowsHealthLagAndStalls(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	require.Equal(t, []string{"4"}, byTestID(t, page, "count-streams"))
	require.Equal(t, []string{"3"}, byTestID(t, page, "count-consumers"))
	require.Equal(t, []string{"1"}, byTestID(t, page, "count-stalled"))
	require.Equal(t, []string{"1 critical, 1 warning"}, byTestID(t, page, "count-unhealthy"))
	require.Len(t, byTestID(t, page, "health-legend"), 1)

	// Worst first, each with its level written out and its reasons.
	doc := parse(t, page)
	rows := nodes(doc, "stream-row")
	require.Len(t, rows, 4)
	require.Equal(t, "FULL", attr(rows[0], "data-stream"))
	require.Equal(t, "critical", text(nodes(rows[0], "health-badge")[0]))
	require.Contains(t, text(nodes(rows[0], "stream-reasons")[0]), "publishes are about to be rejected")
	require.Equal(t, "ORDERS", attr(rows[1], "data-stream"))
	require.Equal(t, "replica n3 is 42 operations behind; consumer shipping is stalled", text(nodes(rows[1], "stream-reasons")[0]))

	require.Equal(t, []string{"150", "7"}, byTestID(t, page, "lag"), "only consumers with pending messages, most first")

	// What is wrong now leads the page: the full stream, the replica
	// behind and the stalled consumer, worst first, each linked.
	problems := nodes(doc, "problem")
	require.Len(t, problems, 3)
	require.Equal(t, []string{"stream", "FULL", "critical"},
		[]string{attr(problems[0], "data-kind"), attr(problems[0], "data-subject"), attr(problems[0], "data-severity")})
	require.Equal(t, []string{"stream", "ORDERS"}, []string{attr(problems[1], "data-kind"), attr(problems[1], "data-subject")})
	require.Contains(t, text(problems[1]), "replica n3 is 42 operations behind")
	require.NotContains(t, text(problems[1]), "shipping", "the stalled consumer is its own problem, listed once")
	require.Equal(t, []string{"stalled", "ORDERS / shipping"}, []string{attr(problems[2], "data-kind"), attr(problems[2], "data-subject")})
	require.Contains(t, text(problems[2]), "150 pending and nothing delivered for 10m since 10m ago")
	require.Equal(t, []string{"/streams/ORDERS/consumers/shipping"}, links(problems[2]))
	require.Equal(t, []string{"3"}, byTestID(t, page, "problem-count"))
	require.Equal(t, []string{"3"}, byTestID(t, page, "nav-badge-problems"), "the count is in the navigation")
	require.Empty(t, byTestID(t, page, "tile-dead-letters"), "no dead-letter desk, no tile")

	require.Len(t, byTestID(t, page, "server-row"), 2)
	require.Empty(t, byTestID(t, page, "jsz-note"))
	require.Contains(t, byTestID(t, page, "nats-state")[0], "NATS connected · n1")
	require.Empty(t, byTestID(t, page, "nats-down"))
	require.Contains(t, byTestID(t, page, "last-sample")[0], "Last sample 2s ago, took 40ms; sampled every 10s.")
	require.Empty(t, byTestID(t, page, "sampler-errors"))
	require.Equal(t, []string{"jetwatch test"}, byTestID(t, page, "footer"))
}

func TestOverviewLinksWorkForAnyName(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	_, page := get(t, srv, "/")
	require.NotContains(t, page, "<script>alert(1)</script>")
	require.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")

	// Every stream and consumer link leads to the page of that very name.
	doc := parse(t, page)
	want := map[string]string{}
	for _, row := range nodes(doc, "stream-row") {
		want[links(row)[0]] = attr(row, "data-stream")
	}
	for _, row := range nodes(doc, "lagging-row") {
		want[links(row)[0]] = attr(row, "data-consumer")
	}
	require.Len(t, want, 6)
	require.Contains(t, want, "/streams/%3Cscript%3Ealert%281%29%3C%2Fscript%3E")
	for href, name := range want {
		res, page := get(t, srv, href)
		require.Equal(t, http.StatusOK, res.StatusCode, href)
		id := "stream-name"
		if strings.Contains(href, "/consumers/") {
			id = "consumer-name"
		}
		require.Equal(t, []string{name}, byTestID(t, page, id), href)
	}
}

func TestOverviewSaysWhenNATSIsDown(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	b.setNATS(NATSState{Since: b.now.Add(-90 * time.Second), LastError: "dial tcp 127.0.0.1:4222: connect: connection refused", Server: "nats://127.0.0.1:4222"})
	for _, target := range []string{"/", "/?fragment=live"} {
		_, page := get(t, srv, target)
		down := byTestID(t, page, "nats-down")
		require.Len(t, down, 1, target)
		require.Contains(t, down[0], "NATS unreachable since 1m ago", target)
		require.Contains(t, down[0], ": dial tcp 127.0.0.1:4222: connect: connection refused", target)
		require.Contains(t, down[0], "the last sample and may be stale", target)
		require.Len(t, byTestID(t, page, "stream-row"), 4, "the last sample is still shown")
	}
}

func TestOverviewBeforeTheFirstSample(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	b.setSampler(store.SamplerState{JSZ: "the NATS user is not in the system account"})
	_, page := get(t, srv, "/")
	require.Equal(t, []string{"Waiting for the first sample…"}, byTestID(t, page, "no-streams"))
	note := byTestID(t, page, "jsz-note")
	require.Len(t, note, 1)
	require.Contains(t, note[0], "the NATS user is not in the system account")
	require.Contains(t, note[0], "system account")
	require.Len(t, byTestID(t, page, "no-problems"), 1)
}

func TestOverviewShowsSamplerErrorsAndStaleStreams(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now.Add(-time.Minute), LastDuration: time.Second,
		Errors: []string{"listing consumers of FULL timed out"}})
	_, page := get(t, srv, "/")
	require.Contains(t, byTestID(t, page, "sampler-errors")[0], "listing consumers of FULL timed out")

	// Forty seconds without a sample is more than three 10 s intervals.
	late, b2 := setup(t, func(c *Config) {
		c.Now = func() time.Time { return testNow.Add(40 * time.Second) }
	})
	seed(t, b2)
	_, page = get(t, late, "/")
	doc := parse(t, page)
	for _, row := range nodes(doc, "stream-row") {
		require.Equal(t, "stale", attr(row, "data-level"), attr(row, "data-stream"))
	}
	require.Contains(t, text(nodes(doc, "stream-reasons")[0]), "not sampled since 40s ago")
}

func TestOverviewFragmentIsTheLiveRegion(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	_, page := get(t, srv, "/")
	live := liveURL(t, page)
	require.Equal(t, "/?fragment=live", live)

	res, frag := get(t, srv, live)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, frag, "<html")
	require.NotContains(t, frag, "<script")
	require.Len(t, byTestID(t, frag, "stream-row"), 4)
	require.Len(t, byTestID(t, frag, "nats-state"), 1)
	require.Contains(t, b.log.String(), `level=DEBUG msg="http request" component=web method=GET path=/ status=200`, "live refreshes log at debug level")
}

// seedTrouble adds to seed's state what a cluster in trouble and jetwatch
// itself leave: a stream that could not be read, a server that is down,
// and jetwatch's own streams with a stalled reader.
func seedTrouble(t *testing.T, b *testBundle) {
	t.Helper()
	readAt := b.now.Add(-time.Minute)
	downSince := b.now.Add(-90 * time.Second)
	require.NoError(t, b.db.SaveCycle(context.Background(), store.Cycle{At: b.now,
		Streams: []store.Stream{
			{Name: "SOLO", Replicas: 1, Messages: 3, SampledAt: b.now,
				Unread: &store.Unread{Why: store.UnreadNoResponse, Detail: "no answer within 2s", ReadAt: &readAt},
				Health: store.Health{Level: store.HealthCritical, Reasons: []string{"no response: no answer within 2s; numbers last read 1m ago"}}},
			{Name: "JETWATCH_ADVISORIES", Own: true, Messages: 500, ConsumerCount: 1, SampledAt: b.now, Health: store.Health{Level: store.HealthOK}},
			{Name: "DLQ", Own: true, Messages: 9, SampledAt: b.now, Health: store.Health{Level: store.HealthCritical, Reasons: []string{"no leader"}}},
		},
		Consumers: []store.Consumer{
			{Stream: "JETWATCH_ADVISORIES", Name: "Xy7_1", Own: true, NumPending: 400, Stalled: true, StalledSince: &readAt,
				Health: store.Health{Level: store.HealthWarning, Reasons: []string{"stalled"}}, SampledAt: b.now},
		},
		Servers: []store.Server{
			{Name: "n1", Cluster: "east", MetaLeader: "n1", Health: store.Health{Level: store.HealthOK}, SampledAt: b.now},
			{Name: "n2", Cluster: "east", Version: "2.15.2", SampledAt: b.now, DownSince: &downSince,
				Health: store.Health{Level: store.HealthCritical, Reasons: []string{"down: no answer since 11:58:30 UTC (1m30s ago)"}}},
			{Name: "n3", Cluster: "east", Health: store.Health{Level: store.HealthOK}, SampledAt: b.now},
		},
	}))
}

func TestOverviewShowsWhatCouldNotBeRead(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	seedTrouble(t, b)
	_, page := get(t, srv, "/")
	doc := parse(t, page)
	var solo *html.Node
	for _, row := range nodes(doc, "stream-row") {
		if attr(row, "data-stream") == "SOLO" {
			solo = row
		}
	}
	require.NotNil(t, solo, "a stream that could not be read is listed")
	require.Equal(t, "critical", attr(solo, "data-level"))
	require.Equal(t, "no response: no answer within 2s; numbers last read 1m ago", text(nodes(solo, "stream-reasons")[0]))

	servers := nodes(doc, "server-row")
	require.Len(t, servers, 3, "a server that does not answer is listed")
	require.Equal(t, "n2", attr(servers[1], "data-server"))
	require.Equal(t, "critical", attr(servers[1], "data-level"))
	require.Contains(t, text(servers[1]), "down: no answer since 11:58:30 UTC")
}

func TestOverviewLeavesJetwatchsOwnOutUnlessAsked(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	seedTrouble(t, b)

	_, page := get(t, srv, "/")
	doc := parse(t, page)
	for _, row := range nodes(doc, "stream-row") {
		require.NotContains(t, []string{"DLQ", "JETWATCH_ADVISORIES"}, attr(row, "data-stream"))
	}
	require.Equal(t, []string{"5"}, byTestID(t, page, "count-streams"), "seed's four and SOLO")
	require.Equal(t, []string{"2 critical, 1 warning"}, byTestID(t, page, "count-unhealthy"))
	require.Equal(t, []string{"1"}, byTestID(t, page, "count-stalled"))
	require.Equal(t, []string{"ORDERS / shipping"}, problemSubjects(doc, "stalled"))
	require.Equal(t, []string{"SOLO"}, problemSubjects(doc, "unread"), "a stream that could not be read is a problem")
	require.Equal(t, []string{"FULL", "ORDERS"}, problemSubjects(doc, "stream"), "the DLQ's missing leader is jetwatch's own")
	require.NotContains(t, byTestID(t, page, "lag"), "400")
	toggle := nodes(doc, "own-toggle")
	require.Len(t, toggle, 1)
	require.Contains(t, text(toggle[0]), "2 of jetwatch's own streams")
	require.Equal(t, []string{"/?own=1"}, links(toggle[0]))

	res, page := get(t, srv, "/?own=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc = parse(t, page)
	var own []string
	for _, row := range nodes(doc, "stream-row") {
		if len(nodes(row, "own-tag")) > 0 {
			own = append(own, attr(row, "data-stream"))
		}
	}
	require.ElementsMatch(t, []string{"DLQ", "JETWATCH_ADVISORIES"}, own)
	require.Equal(t, []string{"7"}, byTestID(t, page, "count-streams"))
	require.Equal(t, []string{"JETWATCH_ADVISORIES / Xy7_1", "ORDERS / shipping"}, problemSubjects(doc, "stalled"))
	require.Equal(t, []string{"DLQ", "FULL", "ORDERS"}, problemSubjects(doc, "stream"))
	require.Equal(t, []string{"/"}, links(nodes(doc, "own-toggle")[0]))
	require.Equal(t, "/?fragment=live&own=1", liveURL(t, page), "live refresh keeps showing them")

	res, page = get(t, srv, "/?own=maybe")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, page, "own must be true or false")
}

// problemSubjects are the subjects of the triage's problems of a kind, in
// the order listed.
func problemSubjects(doc *html.Node, kind string) []string {
	var out []string
	for _, p := range nodes(doc, "problem") {
		if attr(p, "data-kind") == kind {
			out = append(out, attr(p, "data-subject"))
		}
	}
	return out
}
