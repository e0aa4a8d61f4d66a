package web

import (
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy forbids inline scripts, handlers and styles: every
// script and stylesheet comes from jetwatch's own static files.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		p := c.Request().URL.Path
		level := slog.LevelInfo
		if p == "/metrics" || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/static/") || c.QueryParam("fragment") != "" {
			level = slog.LevelDebug
		}
		s.logger.Log(c.Request().Context(), level, "http request",
			"method", c.Request().Method, "path", p, "status", c.Response().Status,
			"duration", time.Since(start).Round(time.Microsecond))
		return nil
	}
}
