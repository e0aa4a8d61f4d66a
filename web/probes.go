package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

type probeAnswer struct {
	Status string           `json:"status"`
	Checks map[string]check `json:"checks"`
}

// healthz says the process is alive; it checks nothing outside it, so a
// NATS outage never gets jetwatch restarted.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, probeAnswer{Status: "ok", Checks: map[string]check{"process": {OK: true, Detail: "serving"}}})
}

// readyz is ready when NATS is connected, the database takes writes and
// the first sample is stored.
func (s *Server) readyz(c echo.Context) error {
	checks := map[string]check{}
	n := s.cfg.NATSState()
	if n.Connected {
		checks["nats"] = check{OK: true, Detail: "connected to " + n.Server}
	} else {
		checks["nats"] = check{Detail: "not connected since " + n.Since.UTC().Format(time.RFC3339) + ": " + n.LastError}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Index.CheckWritable(ctx); err != nil {
		s.logger.Warn("readiness: database not writable", "err", err)
		checks["database"] = check{Detail: "not writable: " + err.Error()}
	} else {
		checks["database"] = check{OK: true, Detail: "writable"}
	}
	st := s.cfg.SamplerState()
	if st.FirstCycleDone {
		checks["first_sample"] = check{OK: true, Detail: "last sample at " + st.LastCycleAt.UTC().Format(time.RFC3339)}
	} else {
		checks["first_sample"] = check{Detail: "no sample stored yet"}
	}
	ans := probeAnswer{Status: "ready", Checks: checks}
	status := http.StatusOK
	for _, ch := range checks {
		if !ch.OK {
			ans.Status, status = "not ready", http.StatusServiceUnavailable
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, ans)
}
