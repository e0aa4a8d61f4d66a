package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
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

// slowRequest is how long a request may take before its log line is a
// warning.
const slowRequest = time.Second

// failureKey holds the *requestFailure the error handler found.
const failureKey = "jetwatch.failure"

// requestFailure is an internal failure behind an answer, for its log line.
type requestFailure struct {
	err error
	// afterAnswer: the answer had begun (a stream of rows) when it failed.
	afterAnswer bool
}

// logRequests logs one line per request after the error handler has
// answered, so the status is the one sent. Only what needs a look is
// above debug: an internal failure at error (with its error, once), a
// slow request at warn. Other answers, 4xx included, are at debug: a
// refused sign-in or API token is logged and audited where it is refused.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		r := c.Request()
		status, took := c.Response().Status, time.Since(start)
		msg, level := "http request", slog.LevelDebug
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "duration", took.Round(time.Microsecond)}
		switch f, _ := c.Get(failureKey).(*requestFailure); {
		case f != nil:
			msg, level = "request failed", slog.LevelError
			if f.afterAnswer {
				msg = "request failed after the answer started"
			}
			attrs = append(attrs, "err", f.err)
			var pe *panicError
			if errors.As(f.err, &pe) {
				attrs = append(attrs, "stack", string(pe.stack))
			}
		case status >= 500 && !isProbe(r.URL.Path):
			// Answered 5xx without an error: still a failure to look at.
			// A probe's 503 is its report, logged where its check failed.
			msg, level = "request failed", slog.LevelError
		case took >= s.slowRequest:
			msg, level = "slow http request", slog.LevelWarn
		}
		s.logger.Log(r.Context(), level, msg, attrs...)
		return nil
	}
}

// isProbe says whether path is a liveness or readiness probe.
func isProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

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
