package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/internal/tracecontext"
)

// tracerName names the web server's spans' instrumentation scope.
const tracerName = "github.com/jetwatch/jetwatch/web"

// traceRequests gives each request a server span named for its route
// ("GET /dead-letters/:id"), with the status sent, and puts it in the
// request's context so handlers, the actions they take and the log lines
// they write join it. Probes, scrapes and static assets are not traced:
// they come every few seconds and say nothing.
//
// An incoming traceparent is continued only from a trusted proxy
// (Config.TrustedProxies): anyone else could pick the trace id jetwatch's
// spans land in, or force sampling by setting the sampled flag. From other
// clients the span starts a new trace with a link to theirs.
func (s *Server) traceRequests() echo.MiddlewareFunc {
	tracer := tracecontext.Tracer(s.cfg.TracerProvider, tracerName)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if p := r.URL.Path; p == "/metrics" || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/static/") {
				return next(c)
			}
			name := r.Method
			if route := c.Path(); route != "" {
				name += " " + route
			}
			attrs := []attribute.KeyValue{attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)}
			if route := c.Path(); route != "" {
				attrs = append(attrs, attribute.String("http.route", route))
			}
			opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...)}
			ctx := r.Context()
			if incoming := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))); incoming.IsValid() {
				if s.fromTrustedProxy(r) {
					ctx = trace.ContextWithRemoteSpanContext(ctx, incoming)
				} else {
					opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: incoming}))
				}
			}
			ctx, span := tracer.Start(ctx, name, opts...)
			defer span.End()
			c.SetRequest(r.WithContext(ctx))
			if err := next(c); err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}

// recordError puts an internal failure on the request's span; the span's
// status follows the answer's.
func recordError(c echo.Context, err error) {
	trace.SpanFromContext(c.Request().Context()).RecordError(err)
}

// fromTrustedProxy says whether the request's peer is one of the trusted
// proxies.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
