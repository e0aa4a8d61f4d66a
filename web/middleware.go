package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy forbids inline scripts, event handler attributes and
// inline styles: every script and stylesheet comes from jetwatch's own
// static files, so injected markup can do nothing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// securityHeaders sets the headers every answer carries, set before the
// handler runs so error pages and 404s have them too.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		if c.IsTLS() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

// logRequests logs one line per request after the error handler has
// answered, so the status is the one sent. Probes, scrapes, assets and live
// refreshes log at debug level: they would drown everything else.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		r := c.Request()
		level := slog.LevelInfo
		if p := r.URL.Path; p == "/metrics" || p == "/healthz" || p == "/readyz" ||
			strings.HasPrefix(p, "/static/") || wantsFragment(c) {
			level = slog.LevelDebug
		}
		s.logger.Log(r.Context(), level, "http request",
			"method", r.Method, "path", r.URL.Path, "status", c.Response().Status,
			"duration", time.Since(start).Round(time.Microsecond))
		return nil
	}
}

// panicError is a recovered panic; the error handler logs it with its stack.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// recoverPanics turns a panicking handler into a 500 answer, so one bad
// page never takes the dashboard down.
func recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				stack := make([]byte, 8<<10)
				stack = stack[:runtime.Stack(stack, false)]
				err = &panicError{value: v, stack: stack}
			}
		}()
		return next(c)
	}
}
