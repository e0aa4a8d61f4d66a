package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
)

func TestTriageListsFiringAlertsWithBadgesOnEveryPage(t *testing.T) {
	t.Parallel()
	srv, _ := setupAlerts(t)

	_, page := get(t, srv, "/")
	doc := parse(t, page)
	require.Equal(t, []string{"orders-lag"}, problemSubjects(doc, "alert"))
	require.Equal(t, []string{"1"}, byTestID(t, page, "nav-badge-alerts"))
	require.Equal(t, "/alerts", attr(nodes(doc, "tile-alerts")[0], "href"))
	problems := byTestID(t, page, "problem-count")
	for _, p := range nodes(doc, "problem") {
		if attr(p, "data-kind") == "alert" {
			require.Equal(t, []string{"/alerts"}, links(p))
		}
	}

	// The counts follow the operator to the other pages.
	for _, target := range []string{"/events", "/breakers", "/alerts"} {
		_, page := get(t, srv, target)
		require.Equal(t, []string{"1"}, byTestID(t, page, "nav-badge-alerts"), target)
		require.Equal(t, problems, byTestID(t, page, "nav-badge-problems"), target)
	}

	// Inactive is no news: not ok's green.
	_, page = get(t, srv, "/alerts")
	for _, n := range nodes(parse(t, page), "alert-state") {
		if text(n) == "inactive" {
			require.Equal(t, "badge inactive", attr(n, "class"))
		}
	}
}

func TestTriageCountsPendingDeadLettersAndTheirRate(t *testing.T) {
	t.Parallel()
	srv, _ := setupDesk(t)

	_, page := get(t, srv, "/")
	require.Equal(t, []string{"3"}, byTestID(t, page, "dead-letters-pending"))
	require.Equal(t, []string{"3 in the last hour · <0.1/min"}, byTestID(t, page, "dead-letters-rate"))
	require.Len(t, byTestID(t, page, "dead-letter-bars"), 1, "a bar per minute of the last hour")
	require.Equal(t, []string{"3"}, byTestID(t, page, "nav-badge-dead-letters"))
	tile := nodes(parse(t, page), "tile-dead-letters")[0]
	require.Equal(t, "/dead-letters?status=pending", attr(tile, "href"))

	res, list := get(t, srv, attr(tile, "href"))
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, list, "dl-row"), 3, "the tile leads to the dead letters it counts")
}

// saveHistory stores one cycle per 10 s from 40 s ago to now of a stream
// with the given consumers; each consumer's pending at sample i is
// pending(i).
func saveHistory(t *testing.T, b *testBundle, stream string, consumers map[string]func(i int) (pending uint64, stalled bool)) {
	t.Helper()
	for i := range 5 {
		at := b.now.Add(time.Duration(i-4) * 10 * time.Second)
		c := store.Cycle{At: at, Streams: []store.Stream{{Name: stream, ConsumerCount: len(consumers), SampledAt: at,
			Health: store.Health{Level: store.HealthOK}}}}
		for name, pending := range consumers {
			n, stalled := pending(i)
			cs := store.Consumer{Stream: stream, Name: name, NumPending: n, DeliveredPerSec: 5, SampledAt: at,
				Health: store.Health{Level: store.HealthOK}}
			if stalled {
				since := b.now.Add(-time.Hour)
				cs.Stalled, cs.StalledSince, cs.DeliveredPerSec = true, &since, 0
				cs.Health.Raise(store.HealthWarning, "stalled")
			}
			c.Consumers = append(c.Consumers, cs)
		}
		require.NoError(t, b.db.SaveCycle(context.Background(), c))
	}
}

// TestTriageNamesConsumersByTheirLagState: the sampler judges lag as a
// trend (collector's lag tests); the triage lists a consumer falling
// behind, stalled or stopped under that name, with the sampler's words
// (arrival against ack rates), and a draining one not at all.
func TestTriageNamesConsumersByTheirLagState(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	idle := b.now.Add(-10 * time.Minute)
	consumer := func(name, lag, level, why string) store.Consumer {
		c := store.Consumer{Stream: "ORDERS", Name: name, NumPending: 1400, LagState: lag, SampledAt: b.now,
			Health: store.Health{Level: store.HealthOK}}
		if why != "" {
			c.Health.Raise(level, why)
		}
		return c
	}
	behind := consumer("shipping", store.LagFallingBehind, store.HealthWarning,
		"falling behind: 1400 pending and rising (20/s arriving, 12/s acknowledged, over the last 40s)")
	behind.ArrivalPerSec, behind.AckPerSec = 20, 12
	stalled := consumer("audit", store.LagStalled, store.HealthCritical,
		"stalled: 1400 unacknowledged and nothing acknowledged for 10m although messages are delivered")
	stalled.Stalled, stalled.StalledSince = true, &idle
	stopped := consumer("mailer", store.LagStopped, store.HealthCritical,
		"stopped: nobody is consuming (no pull requests waiting): 1400 unacknowledged")
	stopped.Stalled, stopped.StalledSince = true, &idle
	pausedUntil := b.now.Add(time.Hour)
	paused := consumer("archiver", store.LagPaused, store.HealthWarning, "paused until "+pausedUntil.Format(time.RFC3339))
	paused.Paused, paused.PauseUntil = true, &pausedUntil
	draining := consumer("billing", store.LagDraining, "", "")
	require.NoError(t, b.db.SaveCycle(context.Background(), store.Cycle{At: b.now,
		Streams:   []store.Stream{{Name: "ORDERS", ConsumerCount: 5, SampledAt: b.now, Health: store.Health{Level: store.HealthOK}}},
		Consumers: []store.Consumer{behind, stalled, stopped, paused, draining}}))

	_, page := get(t, srv, "/")
	doc := parse(t, page)
	require.Equal(t, []string{"ORDERS / shipping"}, problemSubjects(doc, "falling-behind"))
	require.Equal(t, []string{"ORDERS / audit"}, problemSubjects(doc, "stalled"))
	require.Equal(t, []string{"ORDERS / mailer"}, problemSubjects(doc, "stopped"))
	require.Equal(t, []string{"ORDERS / archiver"}, problemSubjects(doc, "paused"), "paused on purpose: neither stopped nor stalled")
	require.Empty(t, problemSubjects(doc, "consumer"))
	for _, p := range nodes(doc, "problem") {
		require.NotContains(t, attr(p, "data-subject"), "billing", "draining is catching up, not a problem")
		switch attr(p, "data-kind") {
		case "falling-behind":
			require.Contains(t, text(p), "20/s arriving, 12/s acknowledged")
			require.Equal(t, "warning", attr(p, "data-severity"))
			require.Equal(t, []string{"/streams/ORDERS/consumers/shipping"}, links(p))
		case "stalled":
			require.Equal(t, "critical", attr(p, "data-severity"))
			require.Contains(t, text(p), "since 10m ago")
		case "paused":
			require.Equal(t, "warning", attr(p, "data-severity"))
			require.Contains(t, text(p), "paused until "+pausedUntil.Format(time.RFC3339))
		}
	}
	require.Equal(t, []string{"4"}, byTestID(t, page, "problem-count"))
	notes := byTestID(t, page, "paused-note")
	require.Len(t, notes, 1, "the largest backlogs say which consumer is paused")
	require.Regexp(t, `^paused until\s+in 1h`, notes[0])
}

func TestTriageSaysWhenNothingIsWrong(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	saveHistory(t, b, "CALM", map[string]func(int) (uint64, bool){
		"worker": func(int) (uint64, bool) { return 0, false },
	})
	_, page := get(t, srv, "/")
	require.Len(t, byTestID(t, page, "no-problems"), 1)
	require.Equal(t, []string{"0"}, byTestID(t, page, "problem-count"))
	require.Equal(t, []string{""}, byTestID(t, page, "nav-badge-problems"), "no count in the navigation")
	badge := nodes(parse(t, page), "nav-badge-problems")[0]
	require.True(t, hasAttr(badge, "hidden"))
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// saveStreams stores n healthy streams ALPHA_000.. and a few unwell ones.
func saveStreams(t *testing.T, b *testBundle, n int) {
	t.Helper()
	c := store.Cycle{At: b.now, StreamsComplete: true}
	for i := range n {
		st := store.Stream{Name: fmt.Sprintf("ALPHA_%03d", i), Messages: uint64(i), Bytes: uint64(1000 * (n - i)),
			InPerSec: float64(i % 7), ConsumerCount: i % 5, SampledAt: b.now, Health: store.Health{Level: store.HealthOK}}
		if i%40 == 3 {
			st.Health.Raise(store.HealthCritical, "no leader")
		}
		c.Streams = append(c.Streams, st)
	}
	c.Streams = append(c.Streams, store.Stream{Name: "under_score", SampledAt: b.now, Health: store.Health{Level: store.HealthOK}},
		store.Stream{Name: "JETWATCH_ADVISORIES", Own: true, SampledAt: b.now, Health: store.Health{Level: store.HealthOK}})
	require.NoError(t, b.db.SaveCycle(context.Background(), c))
}

func streamNames(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, row := range nodes(parse(t, page), "stream-row") {
		out = append(out, attr(row, "data-stream"))
	}
	return out
}

func TestOverviewStreamTablePagesSearchesAndSorts(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	saveStreams(t, b, 120)

	// Worst first, 50 a page, with links to the next page.
	_, page := get(t, srv, "/")
	names := streamNames(t, page)
	require.Len(t, names, 50)
	require.Equal(t, []string{"ALPHA_003", "ALPHA_043", "ALPHA_083", "ALPHA_000"}, names[:4], "critical first, then by name")
	require.Equal(t, []string{"1–50 of 121, worst first"}, byTestID(t, page, "stream-range"))
	require.Equal(t, []string{"Next →"}, byTestID(t, page, "next-page"))
	require.Empty(t, byTestID(t, page, "prev-page"))
	doc := parse(t, page)
	require.Equal(t, "/?page=2", attr(nodes(doc, "next-page")[0], "href"))

	_, page = get(t, srv, "/?page=3")
	require.Len(t, streamNames(t, page), 21)
	require.Equal(t, []string{"101–121 of 121, worst first"}, byTestID(t, page, "stream-range"))
	require.Empty(t, byTestID(t, page, "next-page"))
	require.Equal(t, "/?page=2", attr(nodes(parse(t, page), "prev-page")[0], "href"))
	require.Equal(t, "/?fragment=live&page=3", liveURL(t, page), "live refresh keeps the page")

	_, page = get(t, srv, "/?page=9")
	require.Empty(t, streamNames(t, page))
	require.Contains(t, byTestID(t, page, "no-streams")[0], "past the last stream")
	require.Equal(t, "/?page=3", attr(nodes(parse(t, page), "prev-page")[0], "href"), "back to the last page")

	// Sorted by a column, from its header link; the search keeps the order.
	_, page = get(t, srv, "/")
	var sortLinks []string
	for _, l := range links(nodes(parse(t, page), "streams")[0]) {
		if strings.HasPrefix(l, "/?sort=") {
			sortLinks = append(sortLinks, l)
		}
	}
	require.Equal(t, []string{"/?sort=name", "/?sort=messages", "/?sort=bytes", "/?sort=rate", "/?sort=consumers"}, sortLinks)
	_, page = get(t, srv, "/?sort=messages")
	require.Equal(t, []string{"ALPHA_119", "ALPHA_118"}, streamNames(t, page)[:2])
	require.Equal(t, []string{"Messages ▾"}, byTestID(t, page, "sorted-by"))
	_, page = get(t, srv, "/?sort=bytes")
	require.Equal(t, "ALPHA_000", streamNames(t, page)[0])
	_, page = get(t, srv, "/?sort=rate")
	require.Equal(t, "ALPHA_006", streamNames(t, page)[0], "6/s, the busiest, ties by name")
	_, page = get(t, srv, "/?sort=consumers")
	require.Equal(t, "ALPHA_004", streamNames(t, page)[0])
	_, page = get(t, srv, "/?sort=name&q=alpha_11")
	require.Equal(t, []string{"ALPHA_110", "ALPHA_111", "ALPHA_112", "ALPHA_113", "ALPHA_114", "ALPHA_115", "ALPHA_116", "ALPHA_117", "ALPHA_118", "ALPHA_119"},
		streamNames(t, page), "a case-insensitive search of the names")
	require.Equal(t, "/?fragment=live&q=alpha_11&sort=name", liveURL(t, page))
	require.Equal(t, "/?sort=name", attr(nodes(parse(t, page), "clear-search")[0], "href"), "clearing the search keeps the order")

	// LIKE's wildcards are literal in a search.
	_, page = get(t, srv, "/?q=_")
	require.Len(t, streamNames(t, page), 50, "every ALPHA_ and under_score contain _")
	_, page = get(t, srv, "/?q=r_s")
	require.Equal(t, []string{"under_score"}, streamNames(t, page))
	_, page = get(t, srv, "/?q=%25")
	require.Empty(t, streamNames(t, page))
	require.Contains(t, byTestID(t, page, "no-streams")[0], "No stream name contains")

	// jetwatch's own stay out unless asked for, and the toggle keeps the table.
	_, page = get(t, srv, "/?q=JETWATCH")
	require.Empty(t, streamNames(t, page))
	_, page = get(t, srv, "/?q=JETWATCH&own=1&sort=name")
	require.Equal(t, []string{"JETWATCH_ADVISORIES"}, streamNames(t, page))
	require.Equal(t, []string{"/?q=JETWATCH&sort=name"}, links(nodes(parse(t, page), "own-toggle")[0]))

	// Bad parameters say what to use, and change nothing.
	for target, want := range map[string]string{
		"/?sort=evil":                     "sort \"evil\": use one of health, name",
		"/?page=0":                        "page \"0\": use a page number from 1",
		"/?page=x":                        "page \"x\"",
		"/?q=" + strings.Repeat("q", 300): "q is 300 bytes: at most 255",
	} {
		res, page := get(t, srv, target)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, target)
		require.Contains(t, byTestID(t, page, "error")[0], want, target)
	}
	_, page = get(t, srv, "/")
	require.Len(t, streamNames(t, page), 50, "the table is as it was")
}

func TestEventsHideJetwatchsOwnAndLinkToWhatTheyAreAbout(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	ctx := context.Background()
	failed := testNow.Add(-time.Minute)
	saveHistory(t, d.testBundle, "ORDERS", map[string]func(int) (uint64, bool){"billing": func(int) (uint64, bool) { return 0, false }})
	for i, e := range []store.Event{
		// Someone else's doing, aimed at jetwatch's stream: shown.
		{Kind: "advisory_rejected", At: failed, Stream: "KV_jetwatch_tokens", Consumer: "c", Severity: store.SeverityWarning,
			Summary: "advisory rejected (protected_stream): max_deliver advisory for KV_jetwatch_tokens"},
		{Kind: "consumer_action", At: failed, Stream: "KV_jetwatch_breakers", Consumer: "Xy7", Severity: store.SeverityInfo, Summary: "consumer Xy7 created"},
		{Kind: "consumer_action", At: failed, Stream: "ORDERS", Consumer: "jetwatch-bridge", Severity: store.SeverityInfo, Summary: "consumer jetwatch-bridge created"},
		{Kind: "consumer_action", At: failed, Stream: "ORDERS", Consumer: "billing", Severity: store.SeverityInfo, Summary: "consumer billing created"},
		{Kind: "max_deliver", At: failed, Stream: "ORDERS", Consumer: "billing", Severity: store.SeverityWarning, Summary: "message 1 reached max deliveries"},
		{Kind: "max_deliver", At: failed, Stream: "ORDERS", Consumer: "billing", Severity: store.SeverityWarning, Summary: "message 77 reached max deliveries"},
	} {
		e.ID = uint64(i + 1)
		seq := 1
		if strings.Contains(e.Summary, "77") {
			seq = 77
		}
		require.NoError(t, d.db.RecordEvent(ctx, e, fmt.Sprintf(`{"stream_seq":%d}`, seq)))
	}

	_, page := get(t, srv, "/events")
	doc := parse(t, page)
	rows := nodes(doc, "event-row")
	require.Len(t, rows, 4, "jetwatch's own KV consumer and bridge are left out, not a forgery aimed at its stream")
	require.Contains(t, text(rows[3]), "advisory rejected (protected_stream)")
	require.Contains(t, text(nodes(doc, "own-events-toggle")[0]), "left out")
	require.Equal(t, []string{"/events?own=1"}, links(nodes(doc, "own-events-toggle")[0]))

	// Newest first: the dead letter of message 1 is linked, message 77 has none.
	require.Empty(t, nodes(rows[0], "event-dead-letter"))
	require.Equal(t, []string{"/streams/ORDERS", "/streams/ORDERS/consumers/billing", "/dead-letters/" + u(minID(d.ids))},
		links(nodes(rows[1], "event-links")[0]))
	require.Equal(t, []string{"/streams/ORDERS", "/streams/ORDERS/consumers/billing"}, links(nodes(rows[2], "event-links")[0]))
	when := nodes(rows[0], "event-links")[0].Parent.FirstChild
	require.Contains(t, text(when), "1m ago")
	for _, href := range links(nodes(rows[1], "event-links")[0]) {
		res, _ := get(t, srv, href)
		require.Equal(t, http.StatusOK, res.StatusCode, href)
	}
	// Info is no news: blue, not ok's green.
	require.Contains(t, page, `class="badge info"`)
	require.NotContains(t, page, `class="badge ok"`)

	_, page = get(t, srv, "/events?own=1")
	require.Len(t, byTestID(t, page, "event-row"), 6)
	require.Equal(t, []string{"/events"}, links(nodes(parse(t, page), "own-events-toggle")[0]))

	// Paging keeps the filter and the choice.
	_, page = get(t, srv, "/events?own=1&consumer=billing&limit=1")
	require.Equal(t, "/events?before=6&consumer=billing&own=1", attr(nodes(parse(t, page), "events-next")[0], "href"))

	// The API lists every event, with the dead letter's id.
	_, body := get(t, srv, "/api/v1/events")
	var api struct {
		Items []struct {
			ID           uint64 `json:"id"`
			DeadLetterID uint64 `json:"dead_letter_id"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &api))
	require.Len(t, api.Items, 6)
	require.Equal(t, minID(d.ids), api.Items[1].DeadLetterID)
}

func minID(ids map[string]uint64) uint64 {
	m := ^uint64(0)
	for _, id := range ids {
		m = min(m, id)
	}
	return m
}

func TestDeadLetterWithoutPayloadOffersOnlyEdit(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)

	_, page := get(t, srv, "/dead-letters/"+u(d.ids["gone"]))
	require.Empty(t, byTestID(t, page, "dl-redeliver-form"), "a redelivery with no payload cannot succeed: not offered")
	note := byTestID(t, page, "dl-no-redeliver")
	require.Len(t, note, 1)
	require.Contains(t, note[0], "the original payload was not kept (Term on a WorkQueue)")
	require.Contains(t, note[0], "Edit and redeliver")
	require.Len(t, byTestID(t, page, "dl-edit"), 1, "editing is offered")
	require.Len(t, byTestID(t, page, "dl-discard-form"), 1)

	_, page = get(t, srv, "/dead-letters/"+u(d.ids["json"]))
	require.Len(t, byTestID(t, page, "dl-redeliver-form"), 1)
	require.Empty(t, byTestID(t, page, "dl-no-redeliver"))
}

func TestConsumerChartsMarkWhenItsBreakerWasOpen(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b) // shipping has samples 10 s ago and now
	ctx := context.Background()
	for _, step := range []struct {
		state string
		ago   time.Duration
	}{{store.BreakerClosed, time.Hour}, {store.BreakerOpen, 8 * time.Second}, {store.BreakerHalfOpen, 6 * time.Second},
		{store.BreakerClosed, 4 * time.Second}, {store.BreakerOpen, 2 * time.Second}} {
		_, err := b.db.SaveBreaker(ctx, store.Breaker{Service: "billing", Breaker: "payments-api", Stream: "ORDERS", Consumer: "shipping",
			State: step.state, Since: testNow.Add(-step.ago), HeartbeatSeconds: 10, UpdatedAt: testNow.Add(-step.ago)})
		require.NoError(t, err)
	}
	_, page := get(t, srv, "/streams/ORDERS/consumers/shipping")
	doc := parse(t, page)
	// (The rates chart has one point from two samples: no time axis to
	// mark.)
	for _, id := range []string{"chart-pending"} {
		chart := nodes(doc, id)[0]
		spans := nodes(chart, "chart-span")
		require.Len(t, spans, 3, "%s: open, half-open, open again", id)
		require.Equal(t, "span open", attr(spans[0], "class"))
		require.Equal(t, "span half-open", attr(spans[1], "class"))
		require.Contains(t, text(spans[2]), "breaker billing / payments-api open from 2026-11-26 11:59:58 UTC, still")
		var legend []string
		for _, l := range nodes(chart, "span-legend") {
			legend = append(legend, text(l))
		}
		require.Equal(t, []string{"breaker billing / payments-api open", "breaker billing / payments-api half-open"}, legend)
	}
	// The pending chart spans the 10 s of history: the last span, open
	// for the last 2 s, covers the last fifth of the plot.
	last := nodes(nodes(doc, "chart-pending")[0], "chart-span")[2]
	require.Equal(t, "577.6", attr(last, "x"))
	require.Equal(t, "126.4", attr(last, "width"))
}
