package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// healthz answers GET /healthz: the process is alive and can recover. A
// NATS or disk outage never gets jetwatch restarted (/readyz reports
// those); only a connection closed for good, which nats.go never
// reconnects, fails it.
func (s *Server) healthz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if n := s.cfg.NATSState(); n.Closed {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "failing", "checks": map[string]string{
			"process": "ok", "nats": "the connection was closed for good and will not reconnect: restart jetwatch (see its log)"}})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": map[string]string{"process": "ok"}})
}
