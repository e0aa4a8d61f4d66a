package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// hostileNext are sign-in targets that lead, or could lead after one more
// decoding, to another site.
var hostileNext = []string{
	"/\t/evil.example", "/%09/evil.example", `/\evil`, "//evil", "/%2F%2Fevil", "%2F%2Fevil", "/%252F%252Fevil",
	"https://evil", "HTTPS://evil.example/x", "/\r\n/evil", "/\x00/evil", "/%5Cevil", "javascript:alert(1)",
	"evil.example", "/" + strings.Repeat("x", 10000), "/%" + strings.Repeat("25", 40) + "2F%2Fevil",
}

// TestSignInNextStaysOnThisServer posts the sign-in form with hostile
// next values: the answer always redirects to a path on this server, and
// the sign-in page never puts a hostile value in its form.
func TestSignInNextStaysOnThisServer(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, withUsers(t))
	for _, next := range hostileNext {
		c := newClient(t, srv)
		res, _ := c.do(http.MethodPost, "/login", url.Values{"csrf": {c.csrf}, "user": {"vera"}, "password": {testPassword}, "next": {next}}, "")
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "%q", next)
		require.Equal(t, "/", res.Header.Get("Location"), "%q", next)
		require.NotNil(t, c.cookies[sessionCookie], "signed in all the same")

		// The form carries "/" instead, and a signed-in visit is sent there.
		anon := newClient(t, srv)
		res, page := anon.do(http.MethodGet, "/login?next="+url.QueryEscape(next), nil, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, []string{"/"}, inputValues(t, page, "next"), "%q", next)
		res, _ = c.do(http.MethodGet, "/login?next="+url.QueryEscape(next), nil, "")
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/", res.Header.Get("Location"), "%q", next)
	}

	// The query string exactly as in issue 11.
	c := signedIn(t, srv, "vera")
	res, _ := c.do(http.MethodGet, "/login?next=/%09/evil.example", nil, "")
	require.Equal(t, "/", res.Header.Get("Location"))

	// A local path survives the round trip through the guard and the form.
	anon := newClient(t, srv)
	res, _ = anon.do(http.MethodGet, "/streams/"+url.PathEscape(oddStream)+"?w=1h", nil, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	next := loc.Query().Get("next")
	require.Equal(t, "/streams/"+url.PathEscape(oddStream)+"?w=1h", next)
	res, _ = anon.do(http.MethodPost, "/login", url.Values{"csrf": {anon.csrf}, "user": {"vera"}, "password": {testPassword}, "next": {next}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, next, res.Header.Get("Location"))
}

// inputValues is the value of every input named name on a page.
func inputValues(t *testing.T, page, name string) []string {
	t.Helper()
	var out []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == name {
			out = append(out, attr(n, "value"))
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(parse(t, page))
	return out
}

// TestCSRFTokenIsBoundToTheSession: a token works only for the session it
// was given to, and only from the form body or the header.
func TestCSRFTokenIsBoundToTheSession(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t, withUsers(t))
	path := "/dead-letters/" + u(d.ids["json"]) + "/redeliver"
	a, b := signedIn(t, srv, "otto"), signedIn(t, srv, "otto")
	require.NotEqual(t, a.csrf, b.csrf, "two sessions of one user have two tokens")

	refused := func(c *client, target string, form url.Values, why string) {
		t.Helper()
		res, page := c.do(http.MethodPost, target, form, "")
		require.Equal(t, http.StatusForbidden, res.StatusCode, why)
		require.Contains(t, byTestID(t, page, "error")[0], "this form expired or came from another site", why)
		require.Zero(t, d.ordersCount(t), "%s: nothing was redelivered", why)
	}
	refused(b, path, url.Values{"csrf": {a.csrf}}, "session A's token in session B")
	anon := newClient(t, srv)
	refused(b, path, url.Values{"csrf": {anon.csrf}}, "a sign-in page's token in a session")
	refused(b, path, url.Values{"csrf": {b.cookies[csrfCookie].Value}}, "the CSRF cookie's value")
	refused(b, path+"?csrf="+url.QueryEscape(b.csrf), url.Values{"note": {"x"}}, "the right token, in the query string")
	refused(b, path+"?csrf="+url.QueryEscape(b.csrf), url.Values{}, "the right token, in the query string, empty form")

	// Signed out and in again: the old session's token is dead.
	old := a.csrf
	res, _ := a.do(http.MethodPost, "/logout", url.Values{"csrf": {a.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, page := a.do(http.MethodGet, "/login", nil, "")
	a.csrf = formToken(page)
	require.Equal(t, http.StatusSeeOther, a.signIn("otto", testPassword).StatusCode)
	require.NotEqual(t, old, a.csrf)
	refused(a, path, url.Values{"csrf": {old}}, "the token of a signed-out session")

	// The sign-in form: a token from another browser's sign-in page is
	// refused, and nobody is signed in.
	other := newClient(t, srv)
	victim := newClient(t, srv)
	res, _ = victim.do(http.MethodPost, "/login", url.Values{"csrf": {other.csrf}, "user": {"otto"}, "password": {testPassword}}, "")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Nil(t, victim.cookies[sessionCookie])

	// The right token in the form body, or in the header, is accepted.
	res, _ = b.do(http.MethodPost, path, url.Values{"csrf": {b.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, uint64(1), d.ordersCount(t))
	b.header.Set(csrfHeader, b.csrf)
	res, _ = b.do(http.MethodPost, "/dead-letters/"+u(d.ids["binary"])+"/redeliver", url.Values{"note": {"x"}}, "")
	b.header.Del(csrfHeader)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, uint64(2), d.ordersCount(t))

	// A script's header is bound the same way.
	api := "/api/v1/dead-letters/" + u(d.ids["gone"]) + "/discard"
	b.header.Set(csrfHeader, a.csrf)
	res, _ = b.do(http.MethodPost, api, nil, `{"note":"x"}`)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	hist, err := srv.cfg.DeadLetters.History(context.Background(), d.ids["gone"])
	require.NoError(t, err)
	require.Empty(t, hist, "nothing was discarded")
	b.header.Set(csrfHeader, b.csrf)
	res, body := b.do(http.MethodPost, api, nil, `{"note":"x"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
}

// TestSignOutIsRememberedAcrossRestartsAndReplicas: two jetwatch replicas
// on one NATS share a session key; a sign-out on one is refused on the
// other and on a jetwatch started afterwards.
func TestSignOutIsRememberedAcrossRestartsAndReplicas(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	natsSrv := natstest.RunServer(t)
	users := usersFile(t)
	replica := func() *Server {
		sessions, err := auth.NewSessions(strings.Repeat("s", 32), time.Hour)
		require.NoError(t, err)
		js, err := jetstream.New(natstest.Connect(t, natsSrv))
		require.NoError(t, err)
		so, err := auth.NewSignOuts(js, sessions, auth.SignOutsConfig{Retry: 50 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, so.Start(ctx))
		t.Cleanup(so.Stop)
		select {
		case <-so.Read():
		case <-time.After(10 * time.Second):
			t.Fatal("sign-outs not read")
		}
		srv, _ := setup(t, func(cfg *Config) { cfg.Auth = &AuthConfig{Users: users, Sessions: sessions} })
		return srv
	}
	// with is a browser on srv holding cookie.
	with := func(srv *Server, cookie *http.Cookie) *client {
		c := newClient(t, srv)
		c.cookies[sessionCookie] = cookie
		return c
	}
	a, b := replica(), replica()
	otto := signedIn(t, a, "otto")
	cookie := *otto.cookies[sessionCookie]
	vera := signedIn(t, a, "vera")
	kept := *vera.cookies[sessionCookie]
	res, _ := with(b, &cookie).do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "the replicas share sessions")

	res, _ = otto.do(http.MethodPost, "/logout", url.Values{"csrf": {otto.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = with(a, &cookie).do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "refused at once where signed out")
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if res, _ := with(b, &cookie).do(http.MethodGet, "/", nil, ""); res.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("the other replica still answers %d to the signed-out cookie", res.StatusCode)
		}
		return nil
	})
	res, _ = with(b, &cookie).do(http.MethodPost, "/dead-letters/1/discard", url.Values{"csrf": {otto.csrf}}, "")
	require.Equal(t, http.StatusForbidden, res.StatusCode, "and so is its CSRF token")

	// A restart: a new Server, new sessions, the same NATS.
	restarted := replica()
	res, _ = with(restarted, &cookie).do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "the sign-out outlives the restart")
	require.Equal(t, "/login?next=%2F", res.Header.Get("Location"))
	res, page := with(restarted, &kept).do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "a session not signed out survives the restart")
	require.Contains(t, byTestID(t, page, "who")[0], "vera")
}

// TestViewerSearchLeavesHiddenPayloadsOut: under --hide-payloads a viewer
// cannot find which dead letters hold a value by searching for it; an
// operator, who sees payloads, can.
func TestViewerSearchLeavesHiddenPayloadsOut(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t, withUsers(t), func(cfg *Config) { cfg.HidePayloads = true })
	ctx := context.Background()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":"o-9","card":{"number":"4111111111111111"}}`)
	dlq.Envelope{Reason: dlq.ReasonError, Error: "issuer declined", Stream: "ORDERS", Consumer: "billing", Subject: "orders.paid",
		Sequence: 9, FailedAt: testNow}.Apply(m.Header)
	ack, err := d.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.NoError(t, d.ix.CatchUp(ctx))
	card := url.QueryEscape("4111111111111111")

	apiItems := func(c *client, query string) int {
		t.Helper()
		res, body := c.do(http.MethodGet, "/api/v1/dead-letters?"+query, nil, "")
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &page))
		return len(page.Items)
	}
	viewer, operator := signedIn(t, srv, "vera"), signedIn(t, srv, "otto")
	for _, q := range []string{card, "411111", "o-9", "number"} {
		res, page := viewer.do(http.MethodGet, "/dead-letters?q="+q, nil, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Empty(t, byTestID(t, page, "dl-row"), "viewer, q=%s", q)
		require.Equal(t, []string{"0"}, byTestID(t, page, "dl-matched"), "viewer, q=%s", q)
		require.Equal(t, 0, apiItems(viewer, "q="+q), "viewer API, q=%s", q)
		_, page = viewer.do(http.MethodGet, "/dead-letters/groups?q="+q, nil, "")
		require.Empty(t, byTestID(t, page, "dl-group"), "viewer groups, q=%s", q)
		_, body := viewer.do(http.MethodGet, "/api/v1/dead-letters/export?q="+q, nil, "")
		require.Empty(t, strings.TrimSpace(body), "viewer export, q=%s", q)

		res, page = operator.do(http.MethodGet, "/dead-letters?q="+q, nil, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		rows := nodes(parse(t, page), "dl-row")
		require.Len(t, rows, 1, "operator, q=%s", q)
		require.Equal(t, u(ack.Sequence), attr(rows[0], "data-id"))
		require.Equal(t, 1, apiItems(operator, "q="+q), "operator API, q=%s", q)
	}
	// What viewers see (subject and error) they still find.
	require.Equal(t, 1, apiItems(viewer, "q=issuer+declined"))
	require.Equal(t, 1, apiItems(viewer, "q=orders+paid"))
	_, page := viewer.do(http.MethodGet, "/dead-letters", nil, "")
	require.Equal(t, []string{"words in subject or error"}, placeholders(t, page))
	_, page = operator.do(http.MethodGet, "/dead-letters", nil, "")
	require.Equal(t, []string{"words in subject, error or payload"}, placeholders(t, page))
}

// placeholders is the placeholder of the dead-letter search box.
func placeholders(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, n := range nodes(parse(t, page), "dl-search") {
		out = append(out, attr(n, "placeholder"))
	}
	return out
}

// TestTraceLinkOnlyForWellFormedTraceIDs: a dead letter's traceparent is
// the message's, so only a well-formed W3C trace id becomes a link to the
// tracing UI; anything else is shown as text.
func TestTraceLinkOnlyForWellFormedTraceIDs(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t) // TraceURL http://traces.example/trace/{trace_id}
	ctx := context.Background()
	for _, c := range []struct {
		traceparent, shown string
		link               bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736", true},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "4BF92F3577B34DA6A3CE929D0E0E4736", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00000000000000000000000000000000", false},
		{"00-../../admin/api/delete?all=yes&x=1-00f067aa0ba902b7-01", "../../admin/api/delete?all=yes&x=1", false},
		{"00-\"><script>alert(1)</script>xxxxx-00f067aa0ba902b7-01", "\"><script>alert(1)</script>xxxxx", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e473", false},
		{"garbage", "garbage", false},
	} {
		m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
		m.Data = []byte("{}")
		m.Header.Set("traceparent", c.traceparent)
		dlq.Envelope{Reason: dlq.ReasonError, Error: "x", Stream: "ORDERS", Consumer: "billing", Subject: "orders.paid",
			Sequence: 1, FailedAt: testNow}.Apply(m.Header)
		ack, err := d.js.PublishMsg(ctx, m)
		require.NoError(t, err)
		require.NoError(t, d.ix.CatchUp(ctx))

		res, page := get(t, srv, "/dead-letters/"+u(ack.Sequence))
		require.Equal(t, http.StatusOK, res.StatusCode)
		trace := nodes(parse(t, page), "dl-trace")
		require.Len(t, trace, 1, c.traceparent)
		require.Contains(t, text(trace[0]), c.shown, c.traceparent)
		hrefs := links(trace[0])
		if c.link {
			require.Equal(t, []string{"http://traces.example/trace/" + c.shown}, hrefs)
			require.Empty(t, byTestID(t, page, "dl-trace-invalid"))
		} else {
			require.Empty(t, hrefs, "no link for %q", c.traceparent)
			require.NotEmpty(t, byTestID(t, page, "dl-trace-invalid"), c.traceparent)
			require.NotContains(t, page, "traces.example", c.traceparent)
		}
		require.NotContains(t, page, "<script>alert(1)", "escaped")
	}
}

// TestAnonymousPagesShowNothingOfNATS: the pages anyone can reach (sign-in,
// 401, 403, 404, the readiness probe) name neither the NATS server nor its
// id, nor jetwatch's version; a signed-in operator sees them.
func TestAnonymousPagesShowNothingOfNATS(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t, withUsers(t))
	natsURL, serverID, serverName := d.nc.ConnectedUrl(), d.nc.ConnectedServerId(), d.nc.ConnectedServerName()
	require.NotEmpty(t, serverID)
	d.setNATS(NATSState{Connected: true, Since: testNow.Add(-time.Hour), Server: natsURL, ServerName: serverName})
	secrets := []string{natsURL, strings.TrimPrefix(natsURL, "nats://"), serverID, serverName, "jetwatch test"}

	anonymousPages := func(why string, ready int) {
		t.Helper()
		anon := newClient(t, srv)
		for _, c := range []struct {
			method, target string
			form           url.Values
			status         int
		}{
			{http.MethodGet, "/login", nil, http.StatusOK},
			{http.MethodGet, "/login?next=/x", nil, http.StatusOK},
			{http.MethodGet, "/no-such-page", nil, http.StatusNotFound},
			{http.MethodGet, "/static/x/nothing.css", nil, http.StatusNotFound},
			{http.MethodPost, "/dead-letters/1/discard", url.Values{"note": {"x"}}, http.StatusForbidden},          // no CSRF token
			{http.MethodPost, "/dead-letters/1/discard", url.Values{"csrf": {anon.csrf}}, http.StatusUnauthorized}, // not signed in
			{http.MethodPost, "/login", url.Values{"csrf": {anon.csrf}, "user": {"otto"}, "password": {"wrong"}}, http.StatusUnauthorized},
			{http.MethodGet, "/api/v1/streams", nil, http.StatusUnauthorized},
			{http.MethodGet, "/readyz", nil, ready},
		} {
			res, body := anon.do(c.method, c.target, c.form, "")
			require.Equal(t, c.status, res.StatusCode, "%s %s %s", why, c.method, c.target)
			for _, secret := range secrets {
				require.NotContains(t, body, secret, "%s %s %s", why, c.method, c.target)
			}
			require.Empty(t, byTestID(t, body, "nats-state"), "%s %s %s", why, c.method, c.target)
		}
	}
	anonymousPages("connected", http.StatusOK)
	_, body := get(t, srv, "/readyz")
	require.Contains(t, body, `"detail":"connected"`)

	// Down: the banner would name the server and the error's address.
	d.setNATS(NATSState{Since: testNow.Add(-time.Minute), LastError: "dial tcp 10.1.2.3:4222: connection refused",
		Server: natsURL, ServerName: serverName})
	secrets = append(secrets, "10.1.2.3")
	anonymousPages("disconnected", http.StatusServiceUnavailable)

	// Signed in, the same pages show the connection.
	otto := signedIn(t, srv, "otto")
	_, page := otto.do(http.MethodGet, "/no-such-page", nil, "")
	require.Contains(t, byTestID(t, page, "nats-state")[0], "NATS unreachable")
	require.Contains(t, page, "10.1.2.3")
	require.Equal(t, []string{"jetwatch test"}, byTestID(t, page, "footer"))
	d.setNATS(NATSState{Connected: true, Server: natsURL, ServerName: serverName})
	_, page = otto.do(http.MethodGet, "/no-such-page", nil, "")
	require.Contains(t, byTestID(t, page, "nats-state")[0], serverName)
	_, body = otto.do(http.MethodGet, "/readyz", nil, "")
	require.Contains(t, body, natsURL)
}
