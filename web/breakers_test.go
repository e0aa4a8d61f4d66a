package web

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// reportBreaker saves a report as the breaker watcher does: since is when
// the reported state began.
func reportBreaker(t *testing.T, db *store.DB, service, state string, since time.Time) {
	t.Helper()
	_, err := db.SaveBreaker(context.Background(), store.Breaker{Service: service, Breaker: "smtp", State: state, Since: since,
		UpdatedAt: since, HeartbeatSeconds: 3600, Instance: "host/1", LastError: "421 service not available"})
	require.NoError(t, err)
}

// TestBreakersPageDrawsOutagesOnATimeline stores an outage whose first
// probe failed (open, half-open, open, half-open, closed) and a breaker
// still down, and reads the breakers page and API: the timeline has each
// state's span and one bar per outage; since is the outage's first open.
func TestBreakersPageDrawsOutagesOnATimeline(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	opened := testNow.Add(-40 * time.Minute)
	closed := opened.Add(61 * time.Second)
	reportBreaker(t, b.db, "mailer", store.BreakerClosed, testNow.Add(-3*time.Hour))
	reportBreaker(t, b.db, "mailer", store.BreakerOpen, opened)
	reportBreaker(t, b.db, "mailer", store.BreakerHalfOpen, opened.Add(30*time.Second))
	reportBreaker(t, b.db, "mailer", store.BreakerOpen, opened.Add(30*time.Second+5*time.Millisecond))
	reportBreaker(t, b.db, "mailer", store.BreakerHalfOpen, opened.Add(60*time.Second))
	reportBreaker(t, b.db, "mailer", store.BreakerClosed, closed)

	down := testNow.Add(-5 * time.Minute)
	reportBreaker(t, b.db, "notifier", store.BreakerClosed, testNow.Add(-2*time.Hour))
	reportBreaker(t, b.db, "notifier", store.BreakerOpen, down)
	reportBreaker(t, b.db, "notifier", store.BreakerHalfOpen, down.Add(time.Minute))
	reportBreaker(t, b.db, "notifier", store.BreakerOpen, down.Add(time.Minute+time.Millisecond))

	res, page := get(t, srv, "/breakers")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := parse(t, page)
	require.Len(t, nodes(doc, "breaker-timeline"), 1)
	lanes := nodes(doc, "breaker-lane")
	require.Len(t, lanes, 2)
	require.Equal(t, "notifier / smtp", attr(lanes[0], "data-breaker"), "open first, as in the table")
	require.Equal(t, "mailer / smtp", attr(lanes[1], "data-breaker"))

	type span struct{ state, from, to string }
	spans := func(lane, id string) []span {
		var out []span
		for _, n := range nodes(lane0(lanes, lane), id) {
			out = append(out, span{attr(n, "data-state"), attr(n, "data-from"), attr(n, "data-to")})
		}
		return out
	}
	ms := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
	window := testNow.Add(-time.Hour)
	require.Equal(t, []span{
		{store.BreakerClosed, ms(window), ms(opened)},
		{store.BreakerOpen, ms(opened), ms(opened.Add(30 * time.Second))},
		{store.BreakerHalfOpen, ms(opened.Add(30 * time.Second)), ms(opened.Add(30*time.Second + 5*time.Millisecond))},
		{store.BreakerOpen, ms(opened.Add(30*time.Second + 5*time.Millisecond)), ms(opened.Add(60 * time.Second))},
		{store.BreakerHalfOpen, ms(opened.Add(60 * time.Second)), ms(closed)},
		{store.BreakerClosed, ms(closed), ms(testNow)},
	}, spans("mailer / smtp", "breaker-span"), "the window opens closed, as the breaker was before it")
	require.Equal(t, []span{{"", ms(opened), ms(closed)}}, spans("mailer / smtp", "breaker-outage"),
		"one outage, from the first open until it closed, through the failed probe")
	require.Equal(t, []span{{"", ms(down), ms(testNow)}}, spans("notifier / smtp", "breaker-outage"), "still down")
	require.NotEmpty(t, nodes(doc, "breaker-tick"), "a time axis")

	since := nodes(doc, "breaker-since")
	require.Len(t, since, 2)
	require.Equal(t, down.Format(time.RFC3339), attr(since[0], "datetime"), "down since its first open, not its latest probe")
	require.Contains(t, attr(since[0], "title"), "down since "+views.Absolute(down))
	require.Contains(t, attr(since[0], "title"), "open since "+views.Absolute(down.Add(time.Minute)))
	require.Equal(t, closed.Format(time.RFC3339), attr(since[1], "datetime"), "closed since it closed")

	_, body := get(t, srv, "/api/v1/breakers")
	var out struct {
		Items []struct {
			Service    string    `json:"service"`
			State      string    `json:"state"`
			Since      time.Time `json:"since"`
			StateSince time.Time `json:"state_since"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Len(t, out.Items, 2)
	require.Equal(t, "notifier", out.Items[0].Service)
	require.Equal(t, down, out.Items[0].Since.UTC())
	require.Equal(t, down.Add(time.Minute+time.Millisecond), out.Items[0].StateSince.UTC())

	// A shorter window leaves the mailer's outage out.
	_, page = get(t, srv, "/breakers?window=30m")
	doc = parse(t, page)
	lanes = nodes(doc, "breaker-lane")
	require.Empty(t, nodes(lane0(lanes, "mailer / smtp"), "breaker-outage"))
	require.Equal(t, []string{store.BreakerClosed}, states(nodes(lane0(lanes, "mailer / smtp"), "breaker-span")))

	res, page = get(t, srv, "/breakers?window=soon")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, byTestID(t, page, "error")[0], "use 1h, 24h, 7d")
}

// lane0 is the timeline lane of a breaker.
func lane0(lanes []*html.Node, label string) *html.Node {
	for _, l := range lanes {
		if attr(l, "data-breaker") == label {
			return l
		}
	}
	panic("no lane " + label)
}

func states(spans []*html.Node) []string {
	var out []string
	for _, n := range spans {
		out = append(out, attr(n, "data-state"))
	}
	return out
}
