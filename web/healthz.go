package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// healthz answers GET /healthz: the process is alive. It checks nothing
// outside the process, so a NATS or disk outage never gets jetwatch
// restarted; /readyz reports those.
func (s *Server) healthz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": map[string]string{"process": "ok"}})
}
