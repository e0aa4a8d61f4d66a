package web

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
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
		SamplerState: func() SamplerState { return SamplerState{} }, Gatherer: prometheus.NewRegistry()})
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
	require.Equal(t, 1, strings.Count(log, `msg="request failed"`), "logged once")
	require.Contains(t, log, "panic: secret internal state")
	require.Contains(t, log, "stack=")
	require.Contains(t, log, `msg="http request" component=web method=GET path=/boom status=500`)
}

func TestRequestLogLevels(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	logs := &strings.Builder{}
	srv.logger = slogTo(logs)
	for _, target := range []string{"/", "/metrics", "/healthz", "/readyz", srv.assets.url("app.js")} {
		get(t, srv, target)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 5)
	require.Contains(t, lines[0], "level=INFO")
	require.Contains(t, lines[0], "path=/ status=200 duration=")
	for _, l := range lines[1:] {
		require.Contains(t, l, "level=DEBUG", l)
	}
}
