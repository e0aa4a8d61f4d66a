package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

func TestStartServesAndStopsTwice(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, func(c *Config) { c.Listen = "127.0.0.1:0" })
	seed(t, b)
	require.NoError(t, srv.Start(context.Background()))
	addr := srv.Addr()
	require.NotEqual(t, "127.0.0.1:0", addr, "the real port")

	res, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	// The port is taken now: a second server says so.
	other, _ := setup(t, func(c *Config) { c.Listen = addr })
	err = other.Start(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), addr)

	require.NoError(t, srv.Stop(context.Background()))
	require.NoError(t, srv.Stop(context.Background()), "safe to call twice")
	_, err = net.Dial("tcp", addr)
	require.Error(t, err, "no longer listening")
	require.Error(t, srv.Start(context.Background()), "a stopped server does not start again")

	never, _ := setup(t)
	require.NoError(t, never.Stop(context.Background()), "stopping an unstarted server is fine")
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{})
	require.Error(t, err)
	srv, err := New(Config{Index: stuckIndex{}, NATSState: func() NATSState { return NATSState{} },
		SamplerState: func() store.SamplerState { return store.SamplerState{} }, Gatherer: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", srv.Addr())
	require.Equal(t, "devel", srv.cfg.Version)
	require.Equal(t, int64(10e9), int64(srv.cfg.SampleInterval))
	require.Equal(t, int64(300e9), int64(srv.cfg.StallAfter))
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	for _, target := range []string{"/", "/streams/ORDERS", "/streams/NOPE", "/nothing/here", "/api/v1/streams",
		"/api/v1/streams/NOPE", "/metrics", "/healthz", "/readyz", srv.assets.url("app.css")} {
		res, page := get(t, srv, target)
		h := res.Header
		require.Equal(t, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
			h.Get("Content-Security-Policy"), target)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), target)
		require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), target)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), target)
		if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			require.NotContains(t, page, "style=", "%s: no inline styles under the CSP", target)
			require.NotContains(t, page, "<script>", "%s: no inline scripts under the CSP", target)
			require.NotRegexp(t, `\son[a-z]+=`, page, "%s: no event handler attributes under the CSP", target)
			require.NotContains(t, page, "<style", target)
		}
	}
}

func TestPanicsBecomeAFriendly500(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	srv.echo.GET("/boom", func(echo.Context) error { panic("secret internal state") })
	res, page := get(t, srv, "/boom")
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.Contains(t, byTestID(t, page, "error")[0], "internal error, see jetwatch logs")
	require.NotContains(t, page, "secret internal state")
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	log := b.log.String()
	require.Equal(t, 1, strings.Count(log, "path=/boom"), "one line for the request, with its error")
	require.Contains(t, log, `level=ERROR msg="request failed" component=web method=GET path=/boom status=500 duration=`)
	require.Contains(t, log, "panic: secret internal state")
	require.Contains(t, log, "stack=")
}

// TestRequestLogLevels: at the default level (info) an answered request
// logs nothing, whatever it was, refusals included; a failure logs one
// error line with its error, a slow request one warning.
func TestRequestLogLevels(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, withUsers(t))
	seed(t, b)
	otto, vera, anon := signedIn(t, srv, "otto"), signedIn(t, srv, "vera"), newClient(t, srv)
	logs := &strings.Builder{}
	srv.logger = slog.New(slog.NewTextHandler(lockedWriter{&sync.Mutex{}, logs}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "web")
	for _, r := range []struct {
		c      *client
		method string
		target string
		status int
	}{
		{anon, http.MethodGet, "/login", http.StatusOK},
		{anon, http.MethodGet, "/", http.StatusSeeOther}, // to the sign-in page
		{anon, http.MethodGet, "/metrics", http.StatusOK},
		{anon, http.MethodGet, "/healthz", http.StatusOK},
		{anon, http.MethodGet, "/readyz", http.StatusOK},
		{anon, http.MethodGet, srv.assets.url("app.js"), http.StatusOK},
		{anon, http.MethodGet, "/static/0000/app.js", http.StatusNotFound},
		{anon, http.MethodGet, "/api/v1/streams", http.StatusUnauthorized},
		{otto, http.MethodGet, "/", http.StatusOK},
		{otto, http.MethodGet, "/?fragment=live", http.StatusOK},
		{otto, http.MethodGet, "/breakers", http.StatusOK},
		{otto, http.MethodGet, "/streams/ORDERS", http.StatusOK},
		{otto, http.MethodGet, "/api/v1/streams", http.StatusOK},
		{otto, http.MethodGet, "/streams/NOPE", http.StatusNotFound},
		{otto, http.MethodGet, "/nothing/here", http.StatusNotFound},
		{otto, http.MethodGet, "/breakers?window=soon", http.StatusUnprocessableEntity},
		{vera, http.MethodPost, "/dead-letters/1/discard", http.StatusForbidden}, // refused and audited
	} {
		var form url.Values
		if r.method == http.MethodPost {
			form = url.Values{"csrf": {r.c.csrf}}
		}
		res, _ := r.c.do(r.method, r.target, form, "")
		require.Equal(t, r.status, res.StatusCode, r.target)
	}
	require.Empty(t, requestLines(logs.String()), "nothing at info for answered requests, 4xx included")
	require.Contains(t, logs.String(), `msg=audit component=web actor=vera action=discard`, "the refusal is in the audit log")

	srv.echo.GET("/boom", func(echo.Context) error { return errors.New("disk on fire") })
	srv.slowRequest = 20 * time.Millisecond
	srv.echo.GET("/slow", func(c echo.Context) error {
		time.Sleep(30 * time.Millisecond) // the work a slow request does
		return c.String(http.StatusOK, "done")
	})
	get(t, srv, "/boom")
	get(t, srv, "/slow")
	lines := requestLines(logs.String())
	require.Len(t, lines, 2, logs.String())
	require.Contains(t, lines[0], `level=ERROR msg="request failed" component=web method=GET path=/boom status=500 duration=`)
	require.Contains(t, lines[0], `err="disk on fire"`)
	require.Contains(t, lines[1], `level=WARN msg="slow http request" component=web method=GET path=/slow status=200 duration=`)
	for _, l := range lines {
		require.Empty(t, duplicateKeys(l), l)
	}

	// At debug every request has its line.
	srv.slowRequest = slowRequest
	debug := &strings.Builder{}
	srv.logger = slogTo(debug).With("component", "web")
	get(t, srv, "/healthz")
	otto.do(http.MethodGet, "/", nil, "")
	require.Contains(t, debug.String(), `level=DEBUG msg="http request" component=web method=GET path=/healthz status=200`)
	require.Contains(t, debug.String(), `level=DEBUG msg="http request" component=web method=GET path=/ status=200`)
}

// requestLines are the lines of log about a request (they have its status).
func requestLines(log string) []string {
	var out []string
	for l := range strings.Lines(log) {
		if strings.Contains(l, " status=") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// duplicateKeys returns the keys a text log line has more than once.
func duplicateKeys(line string) []string {
	seen := map[string]int{}
	var dups []string
	for _, m := range logKey.FindAllStringSubmatch(line, -1) {
		if seen[m[1]]++; seen[m[1]] == 2 {
			dups = append(dups, m[1])
		}
	}
	return dups
}

// logKey finds the keys of a slog text line: a word and '=' at the start
// of the line or after a space, outside quoted values.
var logKey = regexp.MustCompile(`(?:^| )([A-Za-z_][A-Za-z0-9_.]*)=(?:"(?:[^"\\]|\\.)*"|\S*)`)

func TestDuplicateKeysFindsThem(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"rules"}, duplicateKeys(`time=x level=INFO msg="alert rules loaded" rules=/etc/r.yaml rules=5 receivers=1`))
	require.Empty(t, duplicateKeys(`time=x level=INFO msg="a b=c" err="x rules=1 rules=2" rules=5`), "quoted values are not keys")
}
