package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
)

// check is one readiness condition.
type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// readiness is the body of /readyz.
type readiness struct {
	Status string           `json:"status"` // "ready" or "not ready"
	Checks map[string]check `json:"checks"`
}

// writableTimeout bounds the database write probe, so a stuck disk makes
// jetwatch unready instead of hanging the probe.
const writableTimeout = 2 * time.Second

// readyz answers GET /readyz: 200 when NATS is connected, the database
// takes writes, the first sample is stored and the dead-letter index is
// not stalled, else 503. Every check is named in the body.
func (s *Server) readyz(c echo.Context) error {
	checks := map[string]check{}
	n := s.cfg.NATSState()
	// Probes are anonymous: which server, and the connection's errors
	// (which name hosts), are for signed-in callers only.
	detailed := principal(c).Role != auth.NoRole
	if n.Connected {
		detail := "connected"
		if detailed {
			detail += " to " + n.Server
		}
		checks["nats"] = check{OK: true, Detail: detail}
	} else {
		detail := "not connected yet"
		if !n.Since.IsZero() {
			detail = "not connected since " + n.Since.UTC().Format(time.RFC3339)
		}
		if n.LastError != "" && detailed {
			detail += ": " + n.LastError
		}
		checks["nats"] = check{Detail: detail}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), writableTimeout)
	defer cancel()
	if err := s.cfg.Index.CheckWritable(ctx); err != nil {
		// The error may name files and SQL; it goes to the log only.
		s.logger.Warn("readiness: database not writable", "err", err)
		checks["database"] = check{Detail: "not writable, see jetwatch logs"}
	} else {
		checks["database"] = check{OK: true, Detail: "writable"}
	}
	st := s.cfg.SamplerState()
	if st.FirstCycleDone {
		checks["first_sample"] = check{OK: true, Detail: "last sample at " + st.LastCycleAt.UTC().Format(time.RFC3339)}
	} else {
		checks["first_sample"] = check{Detail: "no sample stored yet"}
	}
	if s.cfg.DeadLetterIndex != nil {
		checks["dead_letter_index"] = s.indexCheck(ctx)
	}
	ans, status := readiness{Status: "ready", Checks: checks}, http.StatusOK
	for _, ch := range checks {
		if !ch.OK {
			ans.Status, status = "not ready", http.StatusServiceUnavailable
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, ans)
}

// indexCheck fails while the dead-letter index is stalled: a replica that
// cannot index shows stale dead letters. The index keeps time by the wall
// clock, not the server's Now.
func (s *Server) indexCheck(ctx context.Context) check {
	st, err := s.cfg.DeadLetterIndex.Status(ctx)
	switch {
	case err != nil:
		// The database check says whether the database is the trouble.
		s.logger.Warn("readiness: dead-letter index status unreadable", "err", err)
		return check{OK: true, Detail: "status unreadable, see jetwatch logs"}
	case st.Stalled:
		return check{Detail: fmt.Sprintf("%d dead letters not indexed for %s: %s",
			st.Lag, time.Since(st.ProgressAt).Round(time.Second), st.Why)}
	case st.Lag > 0:
		return check{OK: true, Detail: fmt.Sprintf("indexing, %d dead letters behind", st.Lag)}
	}
	return check{OK: true, Detail: fmt.Sprintf("up to date (DLQ sequence %d)", st.Indexed)}
}
