package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// auditResultKey is where a handler may leave the result its audit entry
// records ("sent to ORDERS #42"); otherwise the answer's status says it.
const auditResultKey = "audit.result"

// setAuditResult records how an audited action went, in words.
func setAuditResult(c echo.Context, result string) { c.Set(auditResultKey, result) }

// audited records every call of h in the audit log, after it answered.
func (s *Server) audited(action string, h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := h(c)
		e := audit.Entry{Action: action, Target: c.Request().URL.Path}
		// Dead-letter ids restart in each account: the entry says which.
		// A name no account has is refused (404); its entry keeps it,
		// cut, in the target.
		if a := c.QueryParam("account"); a != "" {
			if s.hasAccount(a) {
				e.Account = a
			} else {
				e.Target += " of unknown account " + shortQuote(a)
			}
		}
		status := c.Response().Status
		var he *echo.HTTPError
		var nf notFoundError
		var ue unavailableError
		switch {
		case errors.As(err, &nf):
			status, e.Result = http.StatusNotFound, nf.msg
		case errors.As(err, &ue):
			status, e.Result = http.StatusServiceUnavailable, ue.msg
		case errors.As(err, &he):
			status = he.Code
			if m, ok := he.Message.(string); ok && he.Code < 500 {
				e.Result = m
			}
		case err != nil:
			status = http.StatusInternalServerError
		}
		if r, ok := c.Get(auditResultKey).(string); ok && r != "" {
			e.Result = r
		}
		if e.Result == "" {
			e.Result = http.StatusText(status)
		}
		e.Failed = err != nil || status >= 400
		s.audit(c, e)
		return err
	}
}

// audit fills in who, from where and when, and records e. A failure to
// record is logged loudly but does not undo what was done.
func (s *Server) audit(c echo.Context, e audit.Entry) {
	p := principal(c)
	e.Actor, e.Method, e.Addr, e.Time = p.Actor(), p.Method, c.RealIP(), s.cfg.Now()
	if e.Actor == "" {
		e.Actor = "anonymous@" + e.Addr
	}
	if s.cfg.Audit == nil {
		s.logger.InfoContext(c.Request().Context(), "audit", "actor", e.Actor, "action", e.Action, "target", e.Target, "result", e.Result, "failed", e.Failed)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
	defer cancel()
	if err := s.cfg.Audit.Record(ctx, e); err != nil {
		s.logger.ErrorContext(ctx, "could not record an audit entry: the act happened but is missing from the audit log",
			"actor", e.Actor, "action", e.Action, "target", e.Target, "err", err)
	}
}

// auditTokenUse records a token's reads at most once per 5 minutes: its
// writes are each audited as actions.
func (s *Server) auditTokenUse(c echo.Context, name string) {
	now := s.cfg.Now()
	if last, ok := s.tokenSeen.Load(name); ok && now.Sub(last.(time.Time)) < 5*time.Minute {
		return
	}
	s.tokenSeen.Store(name, now)
	s.audit(c, audit.Entry{Action: "token.use", Target: c.Request().Method + " " + c.Request().URL.Path, Result: "read"})
}

func (s *Server) auditFilter(c echo.Context) (store.AuditFilter, error) {
	var f store.AuditFilter
	var err error
	if f.Actor, err = textParam(c, "actor", maxActorLen); err != nil {
		return f, err
	}
	if f.Action, err = textParam(c, "action", maxKindLen); err != nil {
		return f, err
	}
	f.Before, err = beforeParam(c, "an audit entry id")
	return f, err
}

const auditPage = 100

// maxActorLen bounds the actor filter: a user or token name and an address.
const maxActorLen = 512

// auditList answers GET /audit.
func (s *Server) auditList(c echo.Context) error {
	if s.cfg.Audit == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the audit log is not available yet: jetwatch is still connecting to NATS")
	}
	f, err := s.auditFilter(c)
	if err != nil {
		return err
	}
	items, err := s.cfg.Audit.List(c.Request().Context(), f, auditPage+1)
	if err != nil {
		return err
	}
	m := views.AuditList{Filter: f}
	if len(items) > auditPage {
		items = items[:auditPage]
		q := c.Request().URL.Query()
		q.Set("before", strconv.FormatUint(items[len(items)-1].ID, 10))
		m.NextURL = "/audit?" + q.Encode()
	}
	m.Items = items
	p := s.page(c, "Audit log", false)
	p.Nav = "audit"
	return s.renderPage(c, p, views.AuditListView(m))
}

// apiAuditList answers GET /api/v1/audit.
func (s *Server) apiAuditList(c echo.Context) error {
	if s.cfg.Audit == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the audit log is not available yet: jetwatch is still connecting to NATS")
	}
	f, err := s.auditFilter(c)
	if err != nil {
		return err
	}
	limit := auditPage
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "limit: use 1 to 1000")
		}
		limit = n
	}
	items, err := s.cfg.Audit.List(c.Request().Context(), f, limit+1)
	if err != nil {
		return err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = strconv.FormatUint(items[len(items)-1].ID, 10)
	}
	if items == nil {
		items = []audit.Entry{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items, "next_before": next})
}
