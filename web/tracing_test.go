package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/otlptest"
	"github.com/jetwatch/jetwatch/internal/telemetry"
)

const incomingTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traced makes a Config export spans to a receiver; flush exports what is
// queued.
func traced(t *testing.T) (opt func(*Config), recv *otlptest.Receiver, flush func()) {
	t.Helper()
	recv = otlptest.Start(t)
	tr, err := telemetry.New(context.Background(), telemetry.Config{Env: recv.Env(nil)})
	require.NoError(t, err)
	return func(cfg *Config) {
			cfg.TracerProvider = tr.Provider()
			cfg.Logger = slog.New(telemetry.NewLogHandler(cfg.Logger.Handler())) // as main wires it
		}, recv,
		func() { require.NoError(t, tr.Shutdown(context.Background())) }
}

func TestRequestSpansAndTheRedeliveryUnderThem(t *testing.T) {
	t.Parallel()
	opt, recv, flush := traced(t)
	srv, d := setupDesk(t, opt)
	path := "/dead-letters/" + u(d.ids["json"])

	// A client's traceparent is not trusted: a new trace, linked to theirs.
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("traceparent", incomingTraceparent)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)

	token, cookie := csrfOf(t, srv, path)
	res, _ := postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}}, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	get(t, srv, "/healthz")
	get(t, srv, "/no/such/page")
	flush()

	shows := recv.Named("GET /dead-letters/:id")
	require.Len(t, shows, 2, recv.Names()) // the page, then csrfOf's
	show := shows[0]
	require.Equal(t, "SPAN_KIND_SERVER", show.Kind.String())
	require.Equal(t, "200", show.Attributes["http.response.status_code"])
	require.Equal(t, "/dead-letters/:id", show.Attributes["http.route"])
	require.Equal(t, path, show.Attributes["url.path"])
	require.NotEqual(t, "4bf92f3577b34da6a3ce929d0e0e4736", show.TraceID)
	require.Empty(t, show.ParentSpanID)
	require.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}, show.Links)

	posts := recv.Named("POST /dead-letters/:id/redeliver")
	require.Len(t, posts, 1, recv.Names())
	require.Equal(t, "303", posts[0].Attributes["http.response.status_code"])
	redeliveries := recv.Named("redeliver dead letter")
	require.Len(t, redeliveries, 1, recv.Names())
	r := redeliveries[0]
	require.Equal(t, posts[0].TraceID, r.TraceID, "the redelivery is part of the operator's request")
	require.Equal(t, posts[0].SpanID, r.ParentSpanID)
	require.Equal(t, []string{"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"}, r.Links, "and links to the dead letter's original trace")

	require.Empty(t, recv.Named("GET /healthz"), "probes are not traced")
	notFound := recv.Named("GET")
	require.Len(t, notFound, 1, "an unknown path is named by its method only: %s", recv.Names())
	require.Equal(t, "404", notFound[0].Attributes["http.response.status_code"])

	// The request log line carries the request's ids.
	require.Contains(t, d.log.String(), "trace_id="+posts[0].TraceID)
}

func TestTraceparentFromATrustedProxyIsContinued(t *testing.T) {
	t.Parallel()
	opt, recv, flush := traced(t)
	srv, _ := setup(t, opt, func(cfg *Config) {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // httptest's client address
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("traceparent", incomingTraceparent)
	srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	flush()

	spans := recv.Named("GET /")
	require.Len(t, spans, 1, recv.Names())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].TraceID)
	require.Equal(t, "00f067aa0ba902b7", spans[0].ParentSpanID)
	require.Empty(t, spans[0].Links)
}

func TestAFailedRequestSpanSaysWhy(t *testing.T) {
	t.Parallel()
	opt, recv, flush := traced(t)
	srv, b := setup(t, opt)
	require.NoError(t, b.db.Close()) // every read now fails
	res, _ := get(t, srv, "/")
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	flush()

	spans := recv.Named("GET /")
	require.Len(t, spans, 1, recv.Names())
	require.Equal(t, "STATUS_CODE_ERROR", spans[0].Status.String())
	require.Equal(t, []string{"exception"}, spans[0].Events)
}
