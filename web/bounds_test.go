package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/store"
)

// publishDeadLetter dead-letters payload from ORDERS/billing and indexes it.
func (d *deskBundle) publishDeadLetter(t testing.TB, payload []byte) uint64 {
	t.Helper()
	ctx := context.Background()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = payload
	dlq.Envelope{Stream: "ORDERS", Consumer: "billing", Subject: "orders.created", Sequence: 9, Reason: dlq.ReasonError,
		Error: "hostile payload", FailedAt: testNow}.Apply(m.Header)
	ack, err := d.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.NoError(t, d.ix.CatchUp(ctx))
	return ack.Sequence
}

// connected checks the desk's NATS connection still works: a round trip
// after anything a request sent, so a server's -ERR has arrived.
func (d *deskBundle) connected(t testing.TB) {
	t.Helper()
	require.NoError(t, d.nc.FlushTimeout(5*time.Second), "the NATS connection")
	require.True(t, d.nc.IsConnected())
}

// status is a dead letter's status as the API shows it.
func (d *deskBundle) status(t testing.TB, srv *Server, id uint64) string {
	t.Helper()
	res, body := get(t, srv, "/api/v1/dead-letters/"+u(id))
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	var one struct{ Status string }
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	return one.Status
}

func TestDeeplyNestedPayloadPageStaysSmall(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	payload := []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000))
	id := d.publishDeadLetter(t, payload)

	res, page := get(t, srv, "/dead-letters/"+u(id))
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Less(t, len(page), 4*len(payload), "the page is a small multiple of its payload (it was 400 MB)")
	require.Contains(t, byTestID(t, page, "dl-payload-note")[0], "not indented: nested more than 64 levels deep")
	require.Equal(t, string(payload), byTestID(t, page, "dl-payload")[0], "shown as sent")

	// An edit of it previews a bounded diff.
	token, cookie := csrfOf(t, srv, "/dead-letters/"+u(id))
	res, page = postForm(t, srv, "/dead-letters/"+u(id)+"/edit", url.Values{"csrf": {token}, "payload": {strings.Repeat("[\n", 20_000)}}, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "dl-payload-diff-note")[0], "Too large to compare line by line")
	require.Zero(t, d.ordersCount(t), "a preview sends nothing")
	d.connected(t)
}

func TestSearchIsBounded(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	huge := strings.Repeat("a", 488<<10)
	words := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", i)
		}
		return url.QueryEscape(strings.Join(w, " "))
	}
	for _, c := range []struct{ q, want string }{
		{huge, "q is 499712 bytes: search with at most 512"},
		{words(17), "q has 17 words: search with at most 16"},
		{strings.Repeat("a.", 200), "q has 200 words"},
	} {
		for _, path := range []string{"/api/v1/dead-letters", "/api/v1/dead-letters/export", "/dead-letters/groups"} {
			res, body := get(t, srv, path+"?q="+c.q)
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, path)
			require.Contains(t, body, c.want, path)
			require.Less(t, len(body), 64<<10, "the answer does not echo the search")
		}
		res, page := get(t, srv, "/dead-letters?q="+c.q)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, byTestID(t, page, "dl-problem")[0], c.want)
		require.Less(t, len(page), 64<<10, "the page does not echo the search")
	}
	res, _ := get(t, srv, "/api/v1/dead-letters?q="+words(16))
	require.Equal(t, http.StatusOK, res.StatusCode, "16 words is within the limit")
	res, page := get(t, srv, "/dead-letters?q=declined")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "dl-row"), 1)

	// Bulk jobs take the same filter.
	token, cookie := csrfOf(t, srv, "/dead-letters")
	res, body := postForm(t, srv, "/dead-letters/bulk/plan?q="+words(17), url.Values{"csrf": {token}}, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, body, "at most 16")
	code, out := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"q":"`+strings.Repeat("x", 600)+`"},"dry_run":true}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, out["error"], "q is 600 bytes")
	require.Zero(t, d.ordersCount(t))
	d.connected(t)
}

func TestOversizedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	id := d.ids["json"]
	path := "/api/v1/dead-letters/" + u(id) + "/redeliver"
	big := append(append([]byte(`{"payload":"`), bytes.Repeat([]byte("QUFB"), 5<<20)...), `"}`...) // 20 MiB of base64

	for name, body := range map[string]io.Reader{
		"sized":   bytes.NewReader(big),
		"chunked": io.MultiReader(bytes.NewReader(big)), // no Content-Length: read until the limit
	} {
		req := httptest.NewRequest(http.MethodPost, path, body)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, name)
		require.Contains(t, rec.Body.String(), "larger than 4 MiB, the most this route takes: nothing was done", name)
	}
	require.Equal(t, store.StatusPending, d.status(t, srv, id), "still pending")
	require.Zero(t, d.ordersCount(t), "nothing sent")

	// Forms: an edit up to 4 MiB is taken, a 5 MiB one refused before its
	// fields are read; a note of 100 KiB is refused too.
	token, cookie := csrfOf(t, srv, "/dead-letters/"+u(id))
	res, page := postForm(t, srv, "/dead-letters/"+u(id)+"/edit", url.Values{"csrf": {token}, "payload": {strings.Repeat("x", 1<<20)}}, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "dl-payload-diff"), 1)
	res, page = postForm(t, srv, "/dead-letters/"+u(id)+"/redeliver", url.Values{"csrf": {token}, "edited": {"1"}, "payload": {strings.Repeat("x", 5<<20)}}, cookie)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Contains(t, byTestID(t, page, "error")[0], "larger than 4 MiB")
	res, _ = postForm(t, srv, "/dead-letters/"+u(id)+"/discard", url.Values{"csrf": {token}, "note": {strings.Repeat("n", 100<<10)}}, cookie)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Equal(t, store.StatusPending, d.status(t, srv, id), "still pending")
	require.Zero(t, d.ordersCount(t), "nothing sent")

	// Within the limit, the API redelivers.
	code, out := postJSON(t, srv, path, `{}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, uint64(1), d.ordersCount(t))
	d.connected(t)
}

func TestBodyLimitsNameRoutes(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	routes := map[string]bool{}
	for _, r := range srv.echo.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	for route := range bodyLimits {
		require.True(t, routes[route], "%s is not a route", route)
	}
}

// setupEverything is setupDesk with every part a route may need: the
// seeded index, the audit log and an alert desk, so no route answers 503
// for a part that is off.
func setupEverything(t testing.TB) (*Server, *deskBundle) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, d := setupDesk(t)
	seed(t, d.testBundle)
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{})
	require.NoError(t, err)
	log.Start(ctx)
	t.Cleanup(log.Stop)
	srv.cfg.Audit = log
	rules, err := alert.Parse([]byte("receivers:\n  - {name: ops, url: \"https://hooks.example.com/hook\"}\nrules:\n"+
		"  - {name: orders-lag, kind: consumer_lag, stream: ORDERS, above: 0, receivers: [ops]}\n"+
		"  - {name: stuck, kind: saga_stuck, start: orders.created, end: [orders.shipped], within: 1m, key: order, receivers: [ops]}\n"), "rules.yaml", nil)
	require.NoError(t, err)
	ev, err := alert.NewEvaluator(d.js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return rules },
		Index: d.db, DeadLetters: query.New(d.db, nil, ""), Now: srv.cfg.Now, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, ev.Evaluate(ctx))
	srv.cfg.Alerts = alert.Alerting{Evaluator: ev, Log: alert.NewDeliveryLog(d.db)}
	cs, err := journey.ParseCorrelations("order=header:X-Order-Id,order=json:order")
	require.NoError(t, err)
	srv.cfg.Journeys = JourneyConfig{Reader: journey.NewReader(d.db), Streams: "ORDERS", Correlations: cs}
	return srv, d
}

func TestOutOfRangeIDsAndMalformedParameters(t *testing.T) {
	t.Parallel()
	srv, d := setupEverything(t)
	for _, id := range []string{"9223372036854775808", "18446744073709551615", "99999999999999999999", "-1", "abc", "0", "1e3", strings.Repeat("9", 5000)} {
		for _, path := range []string{"/dead-letters/" + id, "/api/v1/dead-letters/" + id} {
			res, body := get(t, srv, path)
			require.Equal(t, http.StatusNotFound, res.StatusCode, path)
			require.Less(t, len(body), 32<<10, "the answer does not echo the id")
		}
		for _, action := range []string{"redeliver", "discard"} {
			code, out := postJSON(t, srv, "/api/v1/dead-letters/"+id+"/"+action, `{}`)
			require.Equal(t, http.StatusNotFound, code, out)
		}
	}
	res, _ := get(t, srv, "/dead-letters/9223372036854775807")
	require.Equal(t, http.StatusNotFound, res.StatusCode, "the largest id is simply not there")

	for _, q := range []string{
		"cursor=9223372036854775808", "cursor=18446744073709551615", "cursor=-1", "cursor=abc",
		"limit=0", "limit=501", "limit=abc", "limit=99999999999999999999",
		"since=yesterday", "until=2026-13-01T00:00:00Z", "since=2026-11-26T12:00:00Z&until=2026-11-25T12:00:00Z",
		"since=99999999d", "reason=exploded", "status=bogus", "subject=orders..x",
	} {
		res, body := get(t, srv, "/api/v1/dead-letters?"+q)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, q+": "+body)
		if !strings.HasPrefix(q, "limit") {
			res, _ = get(t, srv, "/dead-letters?"+q)
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, q)
		}
	}
	for _, path := range []string{
		"/api/v1/events?before=9223372036854775808", "/events?before=-1", "/api/v1/events?limit=0",
		"/api/v1/events?stream=" + strings.Repeat("s", 256), "/api/v1/events?kind=" + strings.Repeat("k", 65),
		"/api/v1/streams/ORDERS/consumers/billing?history=9223372036854775807d", "/streams/ORDERS?window=106752d",
		"/dead-letters/groups?since=x", "/api/v1/audit?before=99999999999999999999", "/audit?before=9223372036854775808",
		"/api/v1/audit?limit=lots", "/api/v1/audit?actor=" + strings.Repeat("a", 513), "/api/v1/notifications?limit=x",
	} {
		res, body := get(t, srv, path)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, path+": "+body)
	}
	// A bulk job id that cannot be one is no job, and never reaches NATS.
	for _, path := range []string{"/redeliveries/" + strings.Repeat("a", 5000), "/api/v1/redeliveries/" + strings.Repeat("a", 5000), "/redeliveries/nope"} {
		res, _ := get(t, srv, path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}
	code, _ := postJSON(t, srv, "/api/v1/redeliveries/"+strings.Repeat("a", 5000)+"/cancel", `{}`)
	require.Equal(t, http.StatusNotFound, code)
	// A selection of ids out of range is refused as a filter.
	code, out := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"ids":[18446744073709551615]},"dry_run":true}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	token, cookie := csrfOf(t, srv, "/dead-letters")
	res, _ = postForm(t, srv, "/dead-letters/bulk/plan", url.Values{"csrf": {token}, "id": {"9223372036854775808"}}, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)

	require.Zero(t, d.ordersCount(t))
	require.Equal(t, store.StatusPending, d.status(t, srv, d.ids["json"]))
	d.connected(t)
}

func TestMalformedTokenIDNeverReachesNATS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, d := setupDesk(t)
	tokens := auth.NewTokens(d.js, "", 1)
	require.NoError(t, tokens.Start(ctx))
	t.Cleanup(tokens.Stop)
	srv.cfg.Auth = &AuthConfig{Tokens: tokens}
	kept, bearer, err := tokens.Create(ctx, "admin-script", auth.Admin, "test", time.Now())
	require.NoError(t, err)

	do := func(method, target string, form url.Values, cookie *http.Cookie) *httptest.ResponseRecorder {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req := httptest.NewRequest(method, target, body)
		req.Header.Set("Authorization", "Bearer "+bearer)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	rec := do(http.MethodGet, "/admin/tokens", nil, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var cookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == csrfCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie)
	for _, id := range []string{strings.Repeat("a", 5000), "not-a-token-id", "0123456789abcdeg"} {
		rec = do(http.MethodPost, "/admin/tokens/"+id+"/revoke", url.Values{"csrf": {cookie.Value}}, cookie)
		require.Equal(t, http.StatusNotFound, rec.Code, id)
		require.Contains(t, rec.Body.String(), "no API token")
	}
	d.connected(t)
	list, err := tokens.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, kept.ID, list[0].ID, "no token was revoked")
}

func TestMalformedAlertFingerprintNeverReachesNATS(t *testing.T) {
	t.Parallel()
	srv, d := setupEverything(t)
	for _, fp := range []string{strings.Repeat("a", 5000), "has spaces in it", "0123456789abcdef"} {
		code, out := postJSON(t, srv, "/api/v1/alerts/ack", `{"fingerprint":"`+fp+`"}`)
		require.Equal(t, http.StatusNotFound, code, out)
		require.Less(t, len(out["error"].(string)), 200, "the answer does not echo the fingerprint")
	}
	token, cookie := csrfOf(t, srv, "/alerts")
	res, _ := postForm(t, srv, "/alerts/ack", url.Values{"csrf": {token}, "fingerprint": {strings.Repeat("f", 5000)}}, cookie)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	d.connected(t)
}
