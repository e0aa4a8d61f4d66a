package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/redact"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// testPassword is every test user's password.
const testPassword = "a long test password"

// usersFile writes a users file with vera (viewer), otto (operator) and
// ada (admin). It hashes at bcrypt's lowest cost: the tests are about
// who may do what, not about the hash.
func usersFile(t *testing.T) *auth.Users {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "users")
	body := fmt.Sprintf("vera:viewer:%s\notto:operator:%s\nada:admin:%s\n", hash, hash, hash)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	users, err := auth.OpenUsers(path)
	require.NoError(t, err)
	return users
}

func withUsers(t *testing.T) func(*Config) {
	users := usersFile(t)
	sessions, err := auth.NewSessions(strings.Repeat("s", 32), time.Hour)
	require.NoError(t, err)
	return func(cfg *Config) {
		cfg.Auth = &AuthConfig{Users: users, Sessions: sessions, Lockout: auth.NewLockout(3, 15*time.Minute)}
	}
}

// client is a browser or script talking to srv: it keeps cookies and the
// page's CSRF token.
type client struct {
	t       *testing.T
	srv     *Server
	remote  string
	header  http.Header
	cookies map[string]*http.Cookie
	csrf    string
}

func newClient(t *testing.T, srv *Server) *client {
	c := &client{t: t, srv: srv, remote: "192.0.2.10:5000", header: http.Header{}, cookies: map[string]*http.Cookie{}}
	res, page := c.do(http.MethodGet, "/login", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	c.csrf = formToken(page)
	if c.csrf == "" {
		// No sign-in form (proxy sign-in only): the double-submit cookie.
		c.csrf = c.cookies[csrfCookie].Value
	}
	return c
}

// formToken is the CSRF token a page's forms carry, "" when it has none.
func formToken(page string) string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return ""
	}
	var token string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == csrfField && token == "" {
			token = attr(n, "value")
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	return token
}

// refreshCSRF takes the token from a page, as a browser's next form would:
// after sign-in it is bound to the new session.
func (c *client) refreshCSRF() {
	c.t.Helper()
	res, page := c.do(http.MethodGet, "/", nil, "")
	require.Equal(c.t, http.StatusOK, res.StatusCode)
	c.csrf = formToken(page)
	require.NotEmpty(c.t, c.csrf, "a signed-in page carries a CSRF token")
}

// do sends a request; body is a form (url.Values) or JSON (string).
func (c *client) do(method, target string, form url.Values, jsonBody string) (*http.Response, string) {
	c.t.Helper()
	var req *http.Request
	switch {
	case form != nil:
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case jsonBody != "":
		req = httptest.NewRequest(method, target, strings.NewReader(jsonBody))
		req.Header.Set("Content-Type", "application/json")
	default:
		req = httptest.NewRequest(method, target, nil)
	}
	req.RemoteAddr = c.remote
	for k, v := range c.header {
		req.Header[k] = v
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.srv.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res, string(b)
}

func (c *client) signIn(user, password string) *http.Response {
	c.t.Helper()
	res, _ := c.do(http.MethodPost, "/login", url.Values{"csrf": {c.csrf}, "user": {user}, "password": {password}, "next": {"/dead-letters"}}, "")
	if res.StatusCode == http.StatusSeeOther {
		c.refreshCSRF()
	}
	return res
}

func signedIn(t *testing.T, srv *Server, user string) *client {
	c := newClient(t, srv)
	res := c.signIn(user, testPassword)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/dead-letters", res.Header.Get("Location"))
	return c
}

// examplePath fills a route's parameters.
func examplePath(path string) string {
	r := strings.NewReplacer(":id", "1", ":verb", "pause", ":stream", "ORDERS", ":consumer", "billing", ":hash", "x", ":name", "app.css")
	return r.Replace(path)
}

// TestEveryRouteIsGuarded walks the route table, so a route added without
// a role, or a state-changing one reachable without a CSRF token, fails
// here without anyone remembering to add a case.
func TestEveryRouteIsGuarded(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, withUsers(t))
	anon := newClient(t, srv)
	viewer, operator := signedIn(t, srv, "vera"), signedIn(t, srv, "otto")

	routes := srv.echo.Routes()
	require.Greater(t, len(routes), 30)
	changing := 0
	for _, r := range routes {
		name := r.Method + " " + r.Path
		need, ok := srv.needs[name]
		require.True(t, ok, "%s was added without Server.handle, so no role guards it", name)
		path := examplePath(r.Path)
		api := strings.HasPrefix(path, "/api/")
		if r.Method == http.MethodGet {
			if need == public {
				continue
			}
			res, _ := anon.do(r.Method, path, nil, "")
			if api {
				require.Equal(t, http.StatusUnauthorized, res.StatusCode, name)
			} else {
				require.Equal(t, http.StatusSeeOther, res.StatusCode, name)
				require.Equal(t, "/login?next="+url.QueryEscape(path), res.Header.Get("Location"), name)
			}
			continue
		}
		changing++
		send := func(c *client, withToken bool) *http.Response {
			if api {
				if withToken {
					c.header.Set(csrfHeader, c.csrf)
				}
				defer c.header.Del(csrfHeader)
				res, _ := c.do(r.Method, path, nil, `{}`)
				return res
			}
			form := url.Values{"note": {"x"}}
			if withToken {
				form.Set("csrf", c.csrf)
			}
			res, _ := c.do(r.Method, path, form, "")
			return res
		}
		require.Equal(t, http.StatusForbidden, send(operator, false).StatusCode, "%s without a CSRF token", name)
		require.Equal(t, http.StatusForbidden, send(anon, false).StatusCode, "%s anonymous without a CSRF token", name)
		if need == public {
			continue // sign-in itself
		}
		require.Equal(t, http.StatusUnauthorized, send(anon, true).StatusCode, "%s anonymous", name)
		if need > auth.Viewer {
			require.Equal(t, http.StatusForbidden, send(viewer, true).StatusCode, "%s as a viewer", name)
		}
		if need > auth.Operator {
			require.Equal(t, http.StatusForbidden, send(operator, true).StatusCode, "%s as an operator", name)
		}
	}
	require.GreaterOrEqual(t, changing, 10)

	// The probes, metrics and sign-in stay open.
	for _, p := range []string{"/healthz", "/metrics", "/login"} {
		res, _ := anon.do(http.MethodGet, p, nil, "")
		require.NotEqual(t, http.StatusUnauthorized, res.StatusCode, p)
		require.NotEqual(t, http.StatusSeeOther, res.StatusCode, p)
	}
}

func TestSignInLockoutAndSignOut(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, withUsers(t))
	seed(t, b)
	c := newClient(t, srv)

	res := c.signIn("otto", "wrong password")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, page := c.do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "still anonymous: %s", page)

	// The session cookie: HttpOnly, SameSite=Lax, and the page names the user.
	res = c.signIn("otto", testPassword)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	sess := c.cookies[sessionCookie]
	require.NotNil(t, sess)
	require.True(t, sess.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, sess.SameSite)
	res, page = c.do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "who")[0], "otto")
	require.Contains(t, byTestID(t, page, "who")[0], "operator")

	// A stolen copy of the cookie stops working after sign-out.
	stolen := *sess
	res, _ = c.do(http.MethodPost, "/logout", url.Values{"csrf": {c.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Nil(t, c.cookies[sessionCookie])
	thief := newClient(t, srv)
	thief.cookies[sessionCookie] = &stolen
	res, _ = thief.do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)

	// Three failures lock the name out, even with the right password, and
	// the page says until when; other users are unaffected.
	c = newClient(t, srv)
	c.remote = "192.0.2.11:5000"
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, c.signIn("vera", "guess").StatusCode)
	}
	res, page = c.do(http.MethodPost, "/login", url.Values{"csrf": {c.csrf}, "user": {"vera"}, "password": {testPassword}}, "")
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Contains(t, byTestID(t, page, "signin-problem")[0], "Too many failed sign-ins")
	other := newClient(t, srv)
	other.remote = "198.51.100.7:1234"
	require.Equal(t, http.StatusSeeOther, other.signIn("ada", testPassword).StatusCode)

	require.NotContains(t, b.log.String(), testPassword, "passwords never reach the log")
}

func TestBearerTokensAndCSRFForScripts(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, d := setupDesk(t, withUsers(t))
	tokens := auth.NewTokens(d.js, "", 1)
	require.NoError(t, tokens.Start(ctx))
	t.Cleanup(tokens.Stop)
	srv.cfg.Auth.Tokens = tokens

	_, opBearer, err := tokens.Create(ctx, "ci", auth.Operator, "test", time.Now())
	require.NoError(t, err)
	_, viewBearer, err := tokens.Create(ctx, "grafana", auth.Viewer, "test", time.Now())
	require.NoError(t, err)

	script := newClient(t, srv)
	script.header.Set("Authorization", "Bearer "+viewBearer)
	res, _ := script.do(http.MethodGet, "/api/v1/dead-letters", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = script.do(http.MethodPost, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", nil, `{}`)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "a viewer token may not redeliver")

	// An operator token needs no CSRF token: it is no ambient credential.
	script.header.Set("Authorization", "Bearer "+opBearer)
	res, body := script.do(http.MethodPost, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", nil, `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Equal(t, uint64(1), d.ordersCount(t))

	script.header.Set("Authorization", "Bearer "+opBearer+"x")
	res, body = script.do(http.MethodGet, "/api/v1/dead-letters", nil, "")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, body, "unknown or revoked")
	res, _ = script.do(http.MethodGet, "/metrics", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "a scraper's foreign token does not lock it out of /metrics")
	script.header.Set("Authorization", "Basic dXNlcjpwYXNz")
	res, body = script.do(http.MethodGet, "/api/v1/streams", nil, "")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, body, "only Bearer")

	// A signed-in page's script must send X-CSRF-Token with its cookie.
	op := signedIn(t, srv, "otto")
	res, _ = op.do(http.MethodPost, "/api/v1/dead-letters/"+u(d.ids["binary"])+"/discard", nil, `{"note":"x"}`)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	op.header.Set(csrfHeader, op.csrf)
	res, body = op.do(http.MethodPost, "/api/v1/dead-letters/"+u(d.ids["binary"])+"/discard", nil, `{"note":"x"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, body)

	// Admins manage tokens on a page; the secret is shown once.
	admin := signedIn(t, srv, "ada")
	res, page := admin.do(http.MethodPost, "/admin/tokens", url.Values{"csrf": {admin.csrf}, "name": {"nightly"}, "role": {"viewer"}}, "")
	require.Equal(t, http.StatusCreated, res.StatusCode)
	secret := byTestID(t, page, "token-secret")[0]
	require.True(t, strings.HasPrefix(secret, "jwat_"))
	_, page = admin.do(http.MethodGet, "/admin/tokens", nil, "")
	require.NotContains(t, page, secret)
	require.Len(t, byTestID(t, page, "token-row"), 3)
}

func TestProxyHeadersOnlyFromTheProxy(t *testing.T) {
	t.Parallel()
	trusted, err := auth.ParseCIDRs("10.0.0.0/8")
	require.NoError(t, err)
	roles, err := auth.ParseGroupRoles("sre=operator,*=viewer")
	require.NoError(t, err)
	srv, b := setup(t, func(cfg *Config) {
		cfg.Auth = &AuthConfig{Proxy: &auth.Proxy{UserHeader: "X-Forwarded-User", GroupsHeader: "X-Forwarded-Groups",
			Trusted: trusted, GroupRoles: roles}}
		cfg.TrustedProxies = trusted
	})
	seed(t, b)

	viaProxy := newClient(t, srv)
	viaProxy.remote = "10.1.2.3:40000"
	viaProxy.header.Set("X-Forwarded-User", "carol@example.com")
	viaProxy.header.Set("X-Forwarded-Groups", "dev,sre")
	viaProxy.header.Set("X-Forwarded-For", "203.0.113.9")
	res, page := viaProxy.do(http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "who")[0], "carol@example.com")
	require.Contains(t, byTestID(t, page, "who")[0], "operator")
	require.Empty(t, byTestID(t, page, "signout"), "the proxy owns the session")

	direct := newClient(t, srv)
	direct.header = viaProxy.header.Clone()
	res, _ = direct.do(http.MethodGet, "/api/v1/streams", nil, "")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "the same headers from elsewhere are not believed")
	require.Contains(t, b.log.String(), "not a trusted proxy")
}

func TestAuditRecordsActionsSignInsAndPayloadViews(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, d := setupDesk(t, withUsers(t))
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{})
	require.NoError(t, err)
	log.Start(ctx)
	t.Cleanup(log.Stop)
	srv.cfg.Audit = log

	c := newClient(t, srv)
	require.Equal(t, http.StatusUnauthorized, c.signIn("otto", "nope").StatusCode)
	require.Equal(t, http.StatusSeeOther, c.signIn("otto", testPassword).StatusCode)
	path := "/dead-letters/" + u(d.ids["json"])
	res, _ := c.do(http.MethodGet, path, nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = c.do(http.MethodPost, path+"/redeliver", url.Values{"csrf": {c.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = c.do(http.MethodPost, path+"/redeliver", url.Values{"csrf": {c.csrf}}, "")
	require.Equal(t, http.StatusConflict, res.StatusCode, "the double click")
	res, _ = c.do(http.MethodPost, "/dead-letters/"+u(d.ids["binary"])+"/discard", url.Values{"csrf": {c.csrf}, "note": {"junk"}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = c.do(http.MethodPost, "/dead-letters/bulk", url.Values{"csrf": {c.csrf}, "reason": {"terminated"}, "rate": {"100"}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)

	want := map[string]string{
		"login/failed":     "wrong user name or password",
		"login":            "signed in as operator",
		"payload.view":     "dead-letter " + u(d.ids["json"]),
		"redeliver":        "redelivered to orders.created",
		"redeliver/failed": "already redelivered",
		"discard":          "discarded",
		"bulk.create":      "job ",
	}
	var entries []audit.Entry
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		entries, err = log.List(ctx, store.AuditFilter{}, 100)
		if err != nil {
			return err
		}
		if len(entries) < len(want) {
			return fmt.Errorf("%d of %d entries indexed", len(entries), len(want))
		}
		return nil
	})
	got := map[string]string{}
	for _, e := range entries {
		k := e.Action
		if e.Failed {
			k += "/failed"
		}
		got[k] += e.Target + " " + e.Result + "\n"
		if e.Action != "login" || !e.Failed {
			require.Equal(t, "otto", e.Actor, "%+v", e)
			require.Equal(t, "password", e.Method)
		}
		require.Equal(t, "192.0.2.10", e.Addr)
	}
	for k, v := range want {
		require.Contains(t, got[k], v, "audit %s: %v", k, got)
	}

	// A viewer trying to redeliver is refused, and that is recorded.
	viewer := signedIn(t, srv, "vera")
	res, _ = viewer.do(http.MethodPost, "/dead-letters/"+u(d.ids["gone"])+"/discard", url.Values{"csrf": {viewer.csrf}}, "")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		refused, err := log.List(ctx, store.AuditFilter{Actor: "vera", Action: "discard"}, 10)
		if err != nil {
			return err
		}
		if len(refused) != 1 || !refused[0].Failed || !strings.Contains(refused[0].Result, "refused") {
			return fmt.Errorf("no refused discard by vera yet: %+v", refused)
		}
		return nil
	})

	// The page and API show them.
	res, page := c.do(http.MethodGet, "/audit?action=redeliver", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "audit-row"), 2)
	res, body := c.do(http.MethodGet, "/api/v1/audit?actor=otto&limit=2", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var api struct {
		Items []audit.Entry `json:"items"`
		Next  string        `json:"next_before"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &api))
	require.Len(t, api.Items, 2)
	require.NotEmpty(t, api.Next)
}

func TestRedactionAndHiddenPayloads(t *testing.T) {
	t.Parallel()
	redactor, err := redact.New([]string{"Authorization"}, []string{"card.number", "password"})
	require.NoError(t, err)
	srv, d := setupDesk(t, withUsers(t), func(cfg *Config) {
		cfg.Redact = redactor
		cfg.HidePayloads = true
	})
	ctx := context.Background()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":"o-9","card":{"number":"4111111111111111"},"password":"hunter2"}`)
	m.Header.Set("Authorization", "Bearer sk_live_123")
	env := dlq.Envelope{Reason: dlq.ReasonError, Error: "declined", Stream: "ORDERS", Consumer: "billing", Subject: "orders.paid", Sequence: 9, FailedAt: testNow}
	env.Apply(m.Header)
	ack, err := d.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.NoError(t, d.ix.CatchUp(ctx))
	id := u(ack.Sequence)

	op := signedIn(t, srv, "otto")
	res, page := op.do(http.MethodGet, "/dead-letters/"+id, nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, secret := range []string{"4111111111111111", "hunter2", "sk_live_123"} {
		require.NotContains(t, page, secret)
	}
	require.Contains(t, byTestID(t, page, "dl-payload")[0], `"order": "o-9"`)
	require.Contains(t, byTestID(t, page, "dl-payload")[0], redact.Redacted)
	require.NotEmpty(t, byTestID(t, page, "dl-no-edit"), "an edit would send the masks")
	res, _ = op.do(http.MethodPost, "/dead-letters/"+id+"/edit", url.Values{"csrf": {op.csrf}, "payload": {"{}"}}, "")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)

	op.header.Set(csrfHeader, op.csrf)
	res, body := op.do(http.MethodGet, "/api/v1/dead-letters/"+id, nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var got struct {
		Headers  map[string][]string `json:"headers"`
		Payload  []byte              `json:"payload"`
		Redacted bool                `json:"redacted"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.True(t, got.Redacted)
	require.Equal(t, []string{redact.Redacted}, got.Headers["Authorization"])
	require.NotContains(t, string(got.Payload), "4111")

	// The export masks the same values.
	res, body = op.do(http.MethodGet, "/api/v1/dead-letters/export?subject=orders.paid", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	lines := strings.Split(strings.TrimSpace(body), "\n")
	require.Len(t, lines, 1)
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
	require.True(t, got.Redacted)
	require.Equal(t, []string{redact.Redacted}, got.Headers["Authorization"])
	require.NotContains(t, string(got.Payload), "4111")
	require.NotContains(t, string(got.Payload), "hunter2")
	res, body = op.do(http.MethodGet, "/dead-letters/export", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, strings.Split(strings.TrimSpace(body), "\n"), 4, "every dead letter")
	require.NotContains(t, body, "sk_live_123")

	// Redeliver sends the original, unmasked.
	res, body = op.do(http.MethodPost, "/api/v1/dead-letters/"+id+"/redeliver", nil, `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	sent, err := d.js.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	raw, err := sent.GetLastMsgForSubject(ctx, "orders.paid")
	require.NoError(t, err)
	require.Contains(t, string(raw.Data), "4111111111111111")
	require.Equal(t, "Bearer sk_live_123", raw.Header.Get("Authorization"))

	// A viewer sees no payload at all under --hide-payloads.
	viewer := signedIn(t, srv, "vera")
	_, page = viewer.do(http.MethodGet, "/dead-letters/"+id, nil, "")
	require.NotEmpty(t, byTestID(t, page, "dl-payload-hidden"))
	require.Empty(t, byTestID(t, page, "dl-payload"))
	require.NotEmpty(t, byTestID(t, page, "dl-no-act"))
	_, body = viewer.do(http.MethodGet, "/api/v1/dead-letters/"+id, nil, "")
	require.Contains(t, body, `"payload_hidden":true`)
	require.NotContains(t, body, "o-9")
	_, body = viewer.do(http.MethodGet, "/api/v1/dead-letters/export", nil, "")
	require.Equal(t, 4, strings.Count(body, `"payload_hidden":true`))
	require.NotContains(t, body, "o-9")
}

// TestEveryActionIsAudited calls every audited route, as an admin, and
// finds an entry for each in the audit log, whether the call succeeded
// or failed; a token's reads are recorded too.
func TestEveryActionIsAudited(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, d := setupDesk(t, withUsers(t))
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{})
	require.NoError(t, err)
	log.Start(ctx)
	t.Cleanup(log.Stop)
	srv.cfg.Audit = log
	tokens := auth.NewTokens(d.js, "", 1)
	require.NoError(t, tokens.Start(ctx))
	t.Cleanup(tokens.Stop)
	srv.cfg.Auth.Tokens = tokens

	admin := signedIn(t, srv, "ada")
	want := map[string]bool{"login": true}
	for route, action := range srv.actions {
		method, path, _ := strings.Cut(route, " ")
		path = examplePath(path)
		if action == "logout" {
			continue // last, below
		}
		want[action] = true
		if strings.HasPrefix(path, "/api/") {
			admin.header.Set(csrfHeader, admin.csrf)
			admin.do(method, path, nil, `{}`)
			admin.header.Del(csrfHeader)
		} else if method == http.MethodGet {
			admin.do(method, path, nil, "")
		} else {
			admin.do(method, path, url.Values{"csrf": {admin.csrf}, "name": {"n"}, "role": {"viewer"}}, "")
		}
	}
	_, bearer, err := tokens.Create(ctx, "reader", auth.Viewer, "test", time.Now())
	require.NoError(t, err)
	script := newClient(t, srv)
	script.header.Set("Authorization", "Bearer "+bearer)
	script.do(http.MethodGet, "/api/v1/streams", nil, "")
	want["token.use"] = true
	res, _ := admin.do(http.MethodPost, "/logout", url.Values{"csrf": {admin.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	want["logout"] = true
	require.Greater(t, len(want), 8)

	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		entries, err := log.List(ctx, store.AuditFilter{}, 1000)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range entries {
			seen[e.Action] = true
		}
		for a := range want {
			if !seen[a] {
				return fmt.Errorf("no audit entry for %s yet (have %v)", a, seen)
			}
		}
		return nil
	})
}

// TestCSRFRefusalsOfKnownOperatorsAreAudited: a post refused for its CSRF
// token from a signed-in operator's browser (a forgery tried through it)
// is audited as the action it would have done, with the origin it came
// from; a page that keeps posting is audited once a minute; a stranger's
// refused posts are not audited at all.
func TestCSRFRefusalsOfKnownOperatorsAreAudited(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clock := &lagClock{now: time.Now()}
	srv, d := setupDesk(t, withUsers(t), func(cfg *Config) { cfg.Now = clock.Now })
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{})
	require.NoError(t, err)
	log.Start(ctx)
	t.Cleanup(log.Stop)
	srv.cfg.Audit = log

	c := signedIn(t, srv, "otto")
	path := "/dead-letters/" + u(d.ids["json"]) + "/redeliver"
	c.header.Set("Origin", "https://evil.example")
	for range 3 {
		res, _ := c.do(http.MethodPost, path, url.Values{"csrf": {"forged"}}, "")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
	}
	c.header.Del("Origin")
	stranger := newClient(t, srv)
	res, _ := stranger.do(http.MethodPost, path, url.Values{"csrf": {"forged"}}, "")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	clock.Advance(csrfAuditEvery)
	c.header.Set("Referer", "https://evil.example/phish?session=secret")
	res, _ = c.do(http.MethodPost, "/api/v1/dead-letters/"+u(d.ids["json"])+"/discard", nil, `{"note":"x"}`)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	c.header.Del("Referer")
	// Audited after them: once it is listed, they are too.
	res, _ = c.do(http.MethodGet, "/dead-letters/"+u(d.ids["json"]), nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)

	var entries []audit.Entry
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		entries, err = log.List(ctx, store.AuditFilter{}, 100)
		if err != nil {
			return err
		}
		if len(entries) == 0 || entries[0].Action != "payload.view" {
			return fmt.Errorf("the page view is not indexed yet: %+v", entries)
		}
		return nil
	})
	var refused []string
	for _, e := range entries {
		if strings.Contains(e.Result, "CSRF") {
			require.True(t, e.Failed)
			require.Equal(t, "otto", e.Actor)
			refused = append(refused, e.Action+" "+e.Target+" "+e.Result)
		}
	}
	require.Equal(t, []string{
		"discard POST /api/v1/dead-letters/" + u(d.ids["json"]) + "/discard refused: missing or wrong CSRF token (origin https://evil.example)",
		"redeliver POST " + path + " refused: missing or wrong CSRF token (origin https://evil.example)",
	}, refused)
	require.Zero(t, d.ordersCount(t), "nothing was redelivered")
}
