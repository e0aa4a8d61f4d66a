package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

const journeyTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// journeyBundle is a web server over a real NATS server with ORDERS and
// PAYMENTS followed for journeys, the dead-letter desk and its index.
type journeyBundle struct {
	db  *store.DB
	nc  *nats.Conn
	js  jetstream.JetStream
	ix  *index.Index
	jix *journey.Index
}

func setupJourneys(t *testing.T) (*Server, *journeyBundle) {
	t.Helper()
	srvNATS := natstest.RunServer(t)
	nc := natstest.Connect(t, srvNATS)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, collector.EnsureStreams(ctx, js, collector.StreamsConfig{}))
	for _, s := range []jetstream.StreamConfig{{Name: "ORDERS", Subjects: []string{"orders.>"}}, {Name: "PAYMENTS", Subjects: []string{"payments.>"}}} {
		_, err := js.CreateStream(ctx, s)
		require.NoError(t, err)
	}
	cs, err := journey.ParseCorrelations("order=header:X-Order-Id,order=json:order_id")
	require.NoError(t, err)
	jb := &journeyBundle{nc: nc, js: js}
	srv, _ := setup(t, func(cfg *Config) {
		db := cfg.Index.(*store.DB)
		jb.db = db
		r, err := redeliver.New(nc, db, redeliver.Config{})
		require.NoError(t, err)
		jb.ix, err = index.New(nc, db, index.Config{Keys: cs.KeyValues})
		require.NoError(t, err)
		cfg.DeadLetters, cfg.DeadLetterActions = query.New(db, js, ""), r
		cfg.TraceURL = "http://traces.example/trace/{trace_id}"
		jb.jix, err = journey.NewIndex(js, db, journey.IndexConfig{Streams: func(s string) bool { return s == "ORDERS" || s == "PAYMENTS" },
			Correlations: cs})
		require.NoError(t, err)
		cfg.Journeys = JourneyConfig{Reader: journey.NewReader(db), Streams: "ORDERS,PAYMENTS", Correlations: cs}
	})
	return srv, jb
}

// TestJourneyAcrossTwoStreams follows order o-7 from ORDERS to PAYMENTS,
// where its payment fails into a dead letter while the gateway's breaker
// opens, and an operator redelivers it: the API and the page give each
// step once, in that order, with links.
func TestJourneyAcrossTwoStreams(t *testing.T) {
	t.Parallel()
	srv, jb := setupJourneys(t)
	id := jb.orderSeven(t, srv)

	res, raw := get(t, srv, "/api/v1/journeys/o-7")
	require.Equal(t, http.StatusOK, res.StatusCode, raw)
	var j journey.Journey
	require.NoError(t, json.Unmarshal([]byte(raw), &j))
	type step struct{ kind, what string }
	var got []step
	for _, s := range j.Steps {
		what := s.Subject
		switch s.Kind {
		case journey.StepBreaker:
			what = s.Breaker + " " + s.To
		case journey.StepAction:
			what = s.Action
		}
		got = append(got, step{s.Kind, what})
	}
	require.Equal(t, []step{{"message", "orders.created"}, {"message", "payments.requested"}, {"dead_letter", "payments.requested"},
		{"breaker", "gateway open"}, {"breaker", "gateway closed"}, {"action", "redeliver"}, {"message", "payments.requested"}}, got)
	require.Equal(t, []string{journeyTrace}, j.TraceIDs)
	require.Equal(t, []string{"ORDERS", "PAYMENTS"}, j.Streams)
	require.Equal(t, id, j.Steps[2].DeadLetter)
	require.Equal(t, "redelivered", j.Steps[2].Status)
	require.Equal(t, "PAYMENTS", j.Steps[5].Stream, "the redelivery names where it went")
	require.Equal(t, j.Steps[5].Seq, j.Steps[6].Seq)

	// The same journey by its trace id: the messages carrying it.
	res, raw = get(t, srv, "/api/v1/journeys/"+journeyTrace)
	require.Equal(t, http.StatusOK, res.StatusCode, raw)
	require.NoError(t, json.Unmarshal([]byte(raw), &j))
	require.Equal(t, journey.StepMessage, j.Steps[0].Kind)
	require.Equal(t, []string{"trace"}, j.Steps[0].MatchedBy)

	// The page: the same steps in the same order, with links.
	res, html := get(t, srv, "/journeys/o-7")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := parse(t, html)
	var kinds []string
	for _, n := range nodes(doc, "journey-step") {
		kinds = append(kinds, attr(n, "data-kind"))
	}
	require.Equal(t, []string{"message", "message", "dead_letter", "breaker", "breaker", "action", "message"}, kinds)
	links := nodes(doc, "journey-dead-letter")
	require.Len(t, links, 1)
	require.Equal(t, "/dead-letters/"+u(id), attr(links[0], "href"))
	traces := nodes(doc, "journey-trace-link")
	require.Len(t, traces, 1)
	require.Equal(t, "http://traces.example/trace/"+journeyTrace, attr(traces[0], "href"))
	require.NotContains(t, html, `"amount":12`, "payloads are never shown")
	require.Contains(t, html, `href="/streams/PAYMENTS/consumers/charger"`)

	// The dead letter's page links to its journeys.
	_, html = get(t, srv, "/dead-letters/"+u(id))
	var hrefs []string
	for _, n := range nodes(parse(t, html), "dl-journey-link") {
		hrefs = append(hrefs, attr(n, "href"))
	}
	require.Equal(t, []string{"/journeys/" + journeyTrace, "/journeys/o-7"}, hrefs)

	// The lookup form sends the key on.
	res, _ = get(t, srv, "/journeys?key="+url.QueryEscape("o-7"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/journeys/o-7", res.Header.Get("Location"))
}

// orderSeven makes the journey of order o-7: created on ORDERS, its
// payment on PAYMENTS dead-lettered while the gateway's breaker opens and
// closes, then redelivered through the API. It returns the dead letter.
func (jb *journeyBundle) orderSeven(t *testing.T, srv *Server) uint64 {
	t.Helper()
	ctx := context.Background()
	created := nats.NewMsg("orders.created")
	created.Header.Set("X-Order-Id", "o-7")
	created.Header.Set("traceparent", "00-"+journeyTrace+"-b7ad6b7169203331-01")
	created.Data = []byte(`{"items":3}`)
	_, err := jb.js.PublishMsg(ctx, created)
	require.NoError(t, err)
	pay := nats.NewMsg("payments.requested")
	pay.Header.Set("traceparent", "00-"+journeyTrace+"-00f067aa0ba902b7-01")
	pay.Data = []byte(`{"order_id":"o-7","amount":12}`)
	ack, err := jb.js.PublishMsg(ctx, pay)
	require.NoError(t, err)
	// Its service gives up on it: the dead letter keeps its headers and
	// payload, so its order id and trace id.
	failed := time.Now().Add(time.Millisecond)
	dl := nats.NewMsg(dlq.Subject("PAYMENTS", "charger"))
	dl.Header.Set("traceparent", pay.Header.Get("traceparent"))
	dl.Data = pay.Data
	dlq.Envelope{Stream: "PAYMENTS", Consumer: "charger", Subject: "payments.requested", Sequence: ack.Sequence, Deliveries: 5,
		Reason: dlq.ReasonMaxDeliver, Error: "gateway timeout", Service: "payments-svc", FailedAt: failed}.Apply(dl.Header)
	_, err = jb.js.PublishMsg(ctx, dl)
	require.NoError(t, err)
	require.NoError(t, jb.ix.CatchUp(ctx))
	for _, st := range []struct {
		state string
		at    time.Time
	}{{store.BreakerOpen, failed.Add(time.Millisecond)}, {store.BreakerClosed, failed.Add(2 * time.Millisecond)}} {
		_, err := jb.db.SaveBreaker(ctx, store.Breaker{Service: "payments-svc", Breaker: "gateway", Stream: "PAYMENTS", Consumer: "charger",
			State: st.state, Since: st.at, UpdatedAt: st.at, HeartbeatSeconds: 3600})
		require.NoError(t, err)
	}
	// A breaker on another stream is not part of the journey.
	_, err = jb.db.SaveBreaker(ctx, store.Breaker{Service: "mailer", Breaker: "smtp", Stream: "MAIL", State: store.BreakerOpen,
		Since: failed.Add(time.Millisecond), UpdatedAt: failed, HeartbeatSeconds: 3600})
	require.NoError(t, err)
	page, err := query.New(jb.db, jb.js, "").List(ctx, store.DeadLetterFilter{}, 10, "")
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	id := page.Items[0].ID
	// Redelivered once the breaker closed.
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if time.Now().Before(failed.Add(3 * time.Millisecond)) {
			return errWait
		}
		return nil
	})
	code, body := postJSON(t, srv, "/api/v1/dead-letters/"+u(id)+"/redeliver", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, jb.ix.CatchUp(ctx))
	require.NoError(t, jb.jix.CatchUp(ctx))
	return id
}

// errWait says a condition is not met yet.
var errWait = errorString("not yet")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestJourneyHostileKeys: keys that cannot be journeys are refused with
// what a key may be, and the index is untouched.
func TestJourneyHostileKeys(t *testing.T) {
	t.Parallel()
	srv, jb := setupJourneys(t)
	ctx := context.Background()
	m := nats.NewMsg("orders.created")
	m.Header.Set("X-Order-Id", "o-1")
	_, err := jb.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.NoError(t, jb.jix.CatchUp(ctx))
	for _, key := range []string{strings.Repeat("k", 129), "a%00b", "%FF%FE", "a%0Ab"} {
		res, raw := get(t, srv, "/api/v1/journeys/"+key)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, key)
		require.Contains(t, raw, "a journey key is a trace id or a correlation value", key)
		res, _ = get(t, srv, "/journeys/"+key)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, key)
	}
	res, _ := get(t, srv, "/journeys?key="+url.QueryEscape("a\x00b"))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	// An unknown key is an empty journey, not an error.
	res, raw := get(t, srv, "/api/v1/journeys/nobody")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"key":"nobody","steps":[],"trace_ids":[],"streams":[]}`, raw)
	// Nothing was changed: o-1 is still there, once.
	n, err := jb.db.JourneyRowCount(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	res, raw = get(t, srv, "/api/v1/journeys/o-1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, raw, `"subject":"orders.created"`)

	// Keys named as pages under /journeys have their journey too.
	for _, key := range []string{"stuck", "key"} {
		m := nats.NewMsg("orders.created")
		m.Header.Set("X-Order-Id", key)
		_, err := jb.js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	require.NoError(t, jb.jix.CatchUp(ctx))
	for _, key := range []string{"stuck", "key", "o-1"} {
		res, _ := get(t, srv, "/journeys?key="+key)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, key)
		require.Equal(t, views.JourneyURL(key), res.Header.Get("Location"))
		res, page := get(t, srv, res.Header.Get("Location"))
		require.Equal(t, http.StatusOK, res.StatusCode, key)
		doc := parse(t, page)
		require.Equal(t, []string{key}, byTestID(t, page, "journey-key"))
		require.Len(t, nodes(doc, "journey-step"), 1, key)
	}
	require.Equal(t, "/journeys/key/stuck", views.JourneyURL("stuck"))
	require.Equal(t, "/journeys/o-1", views.JourneyURL("o-1"))
}

// TestStuckJourneysPage lists, under each saga_stuck rule, the journeys
// that started and did not end in time, linked to their journey.
func TestStuckJourneysPage(t *testing.T) {
	t.Parallel()
	srv, d := setupEverything(t)
	ctx := context.Background()
	at := testNow.Add(-10 * time.Minute)
	require.NoError(t, d.db.InsertJourneyEntries(ctx, "journey:ORDERS", 3, []store.JourneyEntry{
		{Stream: "ORDERS", Seq: 1, Subject: "orders.created", At: at, Name: "order", Key: "o-1"},
		{Stream: "ORDERS", Seq: 2, Subject: "orders.created", At: at, Name: "order", Key: "o-2"},
		{Stream: "ORDERS", Seq: 3, Subject: "orders.shipped", At: at.Add(time.Second), Name: "order", Key: "o-2"},
	}))
	res, page := get(t, srv, "/journeys/stuck")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := parse(t, page)
	require.Len(t, nodes(doc, "saga"), 1)
	rows := nodes(doc, "stuck-journey")
	require.Len(t, rows, 1, "o-2 shipped")
	require.Contains(t, text(rows[0]), "o-1")
	require.Contains(t, page, `href="/journeys/o-1"`)
	require.Len(t, nodes(doc, "nav-journeys"), 1)

	// The alerts page says what the rule watches and links here.
	_, page = get(t, srv, "/alerts")
	doc = parse(t, page)
	require.Len(t, nodes(doc, "alert-stuck-journeys"), 1)
	require.Contains(t, page, "saga_stuck key=order start=orders.created end=orders.shipped within 1m")
}
