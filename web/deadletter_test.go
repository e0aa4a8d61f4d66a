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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/streambrowse"
)

type deskBundle struct {
	*testBundle
	nc  *nats.Conn
	js  jetstream.JetStream
	ix  *index.Index
	ids map[string]uint64 // by payload kind: json, binary, gone
}

// setupDesk runs the web server over a real dead-letter desk: an
// in-process NATS server with jetwatch's streams, a real index and real
// redeliveries.
func setupDesk(t testing.TB, opts ...func(*Config)) (*Server, *deskBundle) {
	t.Helper()
	return setupDeskWith(t, index.Config{}, opts...)
}

// setupDeskWith is setupDesk with the dead-letter index configured as
// icfg; its metrics go to the server's registry.
func setupDeskWith(t testing.TB, icfg index.Config, opts ...func(*Config)) (*Server, *deskBundle) {
	t.Helper()
	srvNATS := natstest.RunServer(t)
	nc := natstest.Connect(t, srvNATS)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, collector.EnsureStreams(ctx, js, collector.StreamsConfig{}))
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	var ix *index.Index
	srv, b := setup(t, func(cfg *Config) {
		for _, o := range opts {
			o(cfg)
		}
		db := cfg.Index.(*store.DB)
		r, err := redeliver.New(nc, db, redeliver.Config{TracerProvider: cfg.TracerProvider})
		require.NoError(t, err)
		icfg.Registerer = cfg.Gatherer.(prometheus.Registerer)
		ix, err = index.New(nc, db, icfg)
		require.NoError(t, err)
		t.Cleanup(ix.Stop)
		cfg.DeadLetterIndex = ix
		q := query.New(db, js, "")
		cfg.DeadLetters, cfg.DeadLetterActions = q, r
		jobs := bulk.NewRunner(js, q, r, bulk.Config{SaveEvery: 10 * time.Millisecond, Breakers: db, BreakerPoll: 20 * time.Millisecond})
		t.Cleanup(jobs.Stop)
		require.NoError(t, jobs.Start(ctx))
		cfg.Bulk = jobs
		cfg.TraceURL = "http://traces.example/trace/{trace_id}"
		browser, err := streambrowse.New(nc)
		require.NoError(t, err)
		cfg.Messages = browser
	})
	d := &deskBundle{testBundle: b, nc: nc, js: js, ix: ix, ids: map[string]uint64{}}
	for kind, l := range map[string]struct {
		payload []byte
		env     dlq.Envelope
	}{
		"json":   {[]byte(`{"order":"ord-1","note":"<script>alert(1)</script>"}`), dlq.Envelope{Reason: dlq.ReasonMaxDeliver, Error: "card declined for ord-1"}},
		"binary": {[]byte{0x00, 0xff, 0x10, '<'}, dlq.Envelope{Reason: dlq.ReasonTerminated, Error: "corrupt frame"}},
		"gone":   {nil, dlq.Envelope{Reason: dlq.ReasonTerminated, Error: "unsupported currency", PayloadUnavailable: "Term on a WorkQueue"}},
	} {
		m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
		m.Data = l.payload
		m.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		env := l.env
		env.Stream, env.Consumer, env.Subject, env.Sequence, env.FailedAt = "ORDERS", "billing", "orders.created", 1, testNow.Add(-time.Minute)
		env.Apply(m.Header)
		ack, err := js.PublishMsg(ctx, m)
		require.NoError(t, err)
		d.ids[kind] = ack.Sequence
	}
	require.NoError(t, ix.CatchUp(ctx))
	return srv, d
}

// csrfOf gets a page and returns its form token and cookie.
func csrfOf(t *testing.T, srv *Server, path string) (string, *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var cookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == csrfCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie)
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	return cookie.Value, cookie
}

func postForm(t *testing.T, srv *Server, path string, form url.Values, cookie *http.Cookie) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

func postJSON(t *testing.T, srv *Server, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out
}

func (d *deskBundle) ordersCount(t testing.TB) uint64 {
	t.Helper()
	s, err := d.js.Stream(context.Background(), "ORDERS")
	require.NoError(t, err)
	return s.CachedInfo().State.Msgs
}

func TestDeadLetterPages(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)

	res, page := get(t, srv, "/dead-letters")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "dl-row"), 3)
	require.Equal(t, []string{"3"}, byTestID(t, page, "dl-matched"))

	_, page = get(t, srv, "/dead-letters?reason=terminated")
	require.Len(t, byTestID(t, page, "dl-row"), 2)
	_, page = get(t, srv, "/dead-letters?q=declined")
	require.Len(t, byTestID(t, page, "dl-row"), 1)
	_, page = get(t, srv, "/dead-letters?subject=orders.*")
	require.Len(t, byTestID(t, page, "dl-row"), 3)
	_, page = get(t, srv, "/dead-letters?reason=exploded")
	require.Contains(t, byTestID(t, page, "dl-problem")[0], "reason")
	_, page = get(t, srv, "/dead-letters/groups")
	require.Len(t, byTestID(t, page, "dl-group"), 3)

	// The detail escapes the payload and shows binary as hex.
	_, page = get(t, srv, "/dead-letters/"+u(d.ids["json"]))
	require.NotContains(t, page, "<script>alert(1)</script>")
	require.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Equal(t, []string{"0af7651916cd43dd8448eb211c80319c"}, byTestID(t, page, "dl-trace"))
	require.Contains(t, page, `href="http://traces.example/trace/0af7651916cd43dd8448eb211c80319c"`)
	_, page = get(t, srv, "/dead-letters/"+u(d.ids["binary"]))
	require.Contains(t, page, `data-kind="binary"`)
	require.Contains(t, byTestID(t, page, "dl-payload")[0], "00 ff 10 3c")
	_, page = get(t, srv, "/dead-letters/"+u(d.ids["gone"]))
	require.Contains(t, byTestID(t, page, "dl-unavailable")[0], "Term on a WorkQueue")

	res, _ = get(t, srv, "/dead-letters/999")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = get(t, srv, "/dead-letters/abc")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestRedeliverFromThePageOnceWithCSRF(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	path := "/dead-letters/" + u(d.ids["json"])
	token, cookie := csrfOf(t, srv, path)

	res, _ := postForm(t, srv, path+"/redeliver", url.Values{}, cookie)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "no token")
	res, _ = postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}}, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "no cookie")
	require.Zero(t, d.ordersCount(t))

	res, _ = postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}, "subject": {"orders.created"}}, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, path+"?done=redelivered", res.Header.Get("Location"))
	require.Equal(t, uint64(1), d.ordersCount(t))

	// The double click: nothing more is sent, and the page says why.
	res, page := postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}}, cookie)
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Contains(t, byTestID(t, page, "flash")[0], "already redelivered")
	require.Equal(t, uint64(1), d.ordersCount(t))

	_, page = get(t, srv, path+"?done=redelivered")
	require.Equal(t, []string{"redelivered"}, byTestID(t, page, "dl-status"))
	require.Len(t, byTestID(t, page, "dl-history-row"), 1)
	require.Contains(t, byTestID(t, page, "dl-history-row")[0], "anonymous@")
}

func TestEditPreviewThenSend(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	path := "/dead-letters/" + u(d.ids["gone"])
	token, cookie := csrfOf(t, srv, path)
	form := url.Values{"csrf": {token}, "subject": {"orders.created"}, "payload": {`{"order":"ord-9"}`}, "headers": {"X-Fixed: yes"}}
	res, page := postForm(t, srv, path+"/edit", form, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "dl-payload-diff")[0], `+ {"order":"ord-9"}`)
	require.Contains(t, byTestID(t, page, "dl-header-diff")[0], "+ X-Fixed: yes")
	require.Zero(t, d.ordersCount(t), "a preview sends nothing")

	form.Set("edited", "1")
	res, _ = postForm(t, srv, path+"/redeliver", form, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	s, err := d.js.Stream(context.Background(), "ORDERS")
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, `{"order":"ord-9"}`, string(m.Data))
	require.Equal(t, "yes", m.Header.Get("X-Fixed"))
}

func TestDeadLetterAPI(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	res, body := get(t, srv, "/api/v1/dead-letters?reason=terminated&limit=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Items, 1)
	require.NotEmpty(t, page.NextCursor)
	for _, k := range []string{"id", "stream", "consumer", "subject", "stream_seq", "reason", "error", "status", "deliveries", "failed_at", "payload_available"} {
		require.Contains(t, page.Items[0], k)
	}
	res, _ = get(t, srv, "/api/v1/dead-letters?status=bogus")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)

	_, body = get(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"]))
	var one struct {
		Payload []byte              `json:"payload"`
		Headers map[string][]string `json:"headers"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	require.True(t, bytes.HasPrefix(one.Payload, []byte(`{"order":"ord-1"`)))
	require.NotEmpty(t, one.Headers["traceparent"])

	// Not JSON: refused before anything happens.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", strings.NewReader("subject=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnsupportedMediaType, rec.Code)

	code, out := postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", `{"subject":"nowhere.x"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, out["error"], "no stream captures the subject nowhere.x")
	code, out = postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", `{}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "ORDERS", out["ack_stream"])
	code, out = postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", `{}`)
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, out["error"], "already redelivered")
	require.Equal(t, uint64(1), d.ordersCount(t))

	code, _ = postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["binary"])+"/discard", `{"note":"noise"}`)
	require.Equal(t, http.StatusOK, code)
	code, _ = postJSON(t, srv, "/api/v1/dead-letters/999/discard", `{}`)
	require.Equal(t, http.StatusNotFound, code)

	res, body = get(t, srv, "/api/v1/events")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, body, `"items":`)
}

func u(id uint64) string { return strconv.FormatUint(id, 10) }

func TestBulkFromThePageAndTheAPI(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)

	// Dry run through the API: a count and a sample, nothing sent.
	code, out := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"ORDERS","reason":"terminated"},"dry_run":true}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, 2.0, out["matched"])
	code, out = postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"reason":"exploded"}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, out)

	// The page: tick one dead letter, preview, start.
	token, cookie := csrfOf(t, srv, "/dead-letters")
	res, page := postForm(t, srv, "/dead-letters/bulk/plan?stream=ORDERS", url.Values{"csrf": {token}, "action": {"redeliver"}, "id": {u(d.ids["json"])}}, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	require.Contains(t, byTestID(t, page, "bulk-matched")[0], "1 pending")
	require.Zero(t, d.ordersCount(t))
	res, _ = postForm(t, srv, "/dead-letters/bulk?stream=ORDERS", url.Values{"csrf": {token}, "action": {"redeliver"}, "id": {u(d.ids["json"])}, "rate_per_sec": {"0"}}, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	jobURL := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(jobURL, "/redeliveries/"))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		_, body := get(t, srv, "/api/v1"+jobURL)
		var st struct{ State string }
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st.State != bulk.JobDone {
			return fmt.Errorf("job %s", st.State)
		}
		return nil
	})
	require.Equal(t, uint64(1), d.ordersCount(t), "only the ticked one")
	_, page = get(t, srv, jobURL)
	require.Equal(t, []string{"done"}, byTestID(t, page, "bulk-state"))
	require.Contains(t, byTestID(t, page, "bulk-counts")[0], "1 of 1 done")

	// A discard job through the API, then its controls.
	code, out = postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"ORDERS"},"action":"discard","rate_per_sec":1}`)
	require.Equal(t, http.StatusOK, code, out)
	id := out["id"].(string)
	code, out = postJSON(t, srv, "/api/v1/redeliveries/"+id+"/cancel", `{}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "cancelled", out["state"])
	code, _ = postJSON(t, srv, "/api/v1/redeliveries/"+id+"/resume", `{}`)
	require.Equal(t, http.StatusConflict, code)
	code, _ = postJSON(t, srv, "/api/v1/redeliveries/nope/pause", `{}`)
	require.Equal(t, http.StatusNotFound, code)
}

func TestBreakersPageAPIAndOverview(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	ctx := context.Background()
	for _, br := range []store.Breaker{
		{Service: "billing", Breaker: "payments-api", Stream: "ORDERS", Consumer: "shipping", State: store.BreakerOpen,
			Since: testNow.Add(-time.Minute), Failures: 5, TotalFailures: 9, LastError: "<b>502</b> from payments-api",
			Instance: "host/1", HeartbeatSeconds: 10, UpdatedAt: testNow.Add(-5 * time.Second)},
		{Service: "mailer", Breaker: "smtp", State: store.BreakerClosed, Since: testNow.Add(-time.Hour),
			Instance: "host/2", HeartbeatSeconds: 10, UpdatedAt: testNow.Add(-10 * time.Minute)},
	} {
		_, err := b.db.SaveBreaker(ctx, br)
		require.NoError(t, err)
	}
	res, page := get(t, srv, "/breakers")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "breaker-row"), 2)
	require.Equal(t, []string{"stale"}, byTestID(t, page, "breaker-stale"), "the mailer has not reported for 10 minutes")
	require.NotContains(t, page, "<b>502</b>")

	_, page = get(t, srv, "/")
	doc := parse(t, page)
	require.Equal(t, []string{"billing / payments-api"}, problemSubjects(doc, "breaker"), "an open breaker is a problem")
	for _, p := range nodes(doc, "problem") {
		if attr(p, "data-kind") == "breaker" {
			require.Equal(t, []string{"/streams/ORDERS/consumers/shipping"}, links(p), "it links to the consumer it guards")
			require.Contains(t, text(p), "it guards ORDERS / shipping")
		}
	}
	require.Equal(t, []string{"1"}, byTestID(t, page, "nav-badge-breakers"))
	_, page = get(t, srv, "/streams/ORDERS/consumers/shipping")
	require.Len(t, byTestID(t, page, "consumer-breakers"), 1)

	_, body := get(t, srv, "/api/v1/breakers")
	var out struct {
		Items []struct {
			Service string `json:"service"`
			Breaker string `json:"breaker"`
			State   string `json:"state"`
			Stale   bool   `json:"stale"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Len(t, out.Items, 2)
	require.Equal(t, "open", out.Items[0].State, "open first")
	require.False(t, out.Items[0].Stale)
	require.True(t, out.Items[1].Stale)
}

func TestDeadLetterPagesSayWhenNATSCannotBeAsked(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	d.nc.Close() // payloads and headers come from the DLQ stream
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/dead-letters/export", nil))
	require.Equal(t, http.StatusOK, rec.Code, "the answer had begun")
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	var last map[string]string
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.Contains(t, last["error"], "export stopped after 0 dead letters")
	require.Contains(t, last["error"], "check jetwatch's NATS connection")

	// The detail page and API say the same, with 503, not an internal error.
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/v1/dead-letters/%d", d.ids["json"]), nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), "NATS could not be asked for them")
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/dead-letters/%d", d.ids["json"]), nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), "check jetwatch&#39;s NATS connection")
}

func TestDeadLetterGoneFromTheStreamStillShows(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	s, err := d.js.Stream(context.Background(), "DLQ")
	require.NoError(t, err)
	require.NoError(t, s.DeleteMsg(context.Background(), d.ids["json"]))
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/dead-letters/%d", d.ids["json"]), nil))
	require.Equal(t, http.StatusOK, rec.Code)
	unavailable := byTestID(t, rec.Body.String(), "dl-unavailable")
	require.Len(t, unavailable, 1)
	require.Contains(t, unavailable[0], "the DLQ stream no longer holds this dead letter")
	require.Contains(t, rec.Body.String(), "card declined for ord-1", "what the index kept is shown")
	require.NotContains(t, rec.Body.String(), "ord-1&#34;", "no payload is shown")
}

// Without the redeliverer the reads still serve, and redelivering or
// discarding answers 503, sending and recording nothing.
func TestDeadLetterActionsWithoutARedelivererAnswer503(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	srv.cfg.DeadLetterActions = nil
	path := "/dead-letters/" + u(d.ids["json"])
	token, cookie := csrfOf(t, srv, path)
	for _, action := range []string{"redeliver", "discard"} {
		res, page := postForm(t, srv, path+"/"+action, url.Values{"csrf": {token}}, cookie)
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, action)
		require.Contains(t, page, "dead letters are not served by this jetwatch", "the page says why, not just 'internal error'")
		code, body := postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/"+action, `{}`)
		require.Equal(t, http.StatusServiceUnavailable, code, action)
		require.Contains(t, body["error"], "nothing was changed", action)
	}
	require.Zero(t, d.ordersCount(t), "nothing was sent")
	got, err := srv.cfg.DeadLetters.Get(context.Background(), d.ids["json"])
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, got.Status, "nothing was recorded")
}
