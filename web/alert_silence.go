package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/views"
)

// alertSilence answers POST /alerts/silence and redirects to the alerts
// page; a refusal is shown there, nothing recorded.
func (s *Server) alertSilence(c echo.Context) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	d, err := time.ParseDuration(strings.TrimSpace(c.FormValue("for")))
	if err != nil {
		return s.alertRefused(c, http.StatusUnprocessableEntity, "For: "+c.FormValue("for")+" is not a duration (like 30m, 4h).")
	}
	sil, err := s.cfg.Alerts.Silence(c.Request().Context(), alert.SilenceRequest{Rule: c.FormValue("rule"),
		Fingerprint: c.FormValue("fingerprint"), For: d, By: actor(c), Why: c.FormValue("why")})
	if status, msg, ok := alertError(err); ok {
		return s.alertRefused(c, status, msg)
	} else if err != nil {
		return err
	}
	setAuditResult(c, silenceResult(sil))
	return c.Redirect(http.StatusSeeOther, "/alerts?done=silenced")
}

// apiSilenceRequest is the body of POST /api/v1/alerts/silences.
type apiSilenceRequest struct {
	Rule        string `json:"rule"`
	Fingerprint string `json:"fingerprint"`
	// For is a duration like "30m".
	For string `json:"for"`
	Why string `json:"why"`
}

// apiAlertSilence answers POST /api/v1/alerts/silences with the silence.
func (s *Server) apiAlertSilence(c echo.Context) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	var req apiSilenceRequest
	if err := c.Bind(&req); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "send JSON: {\"rule\", \"fingerprint\", \"for\", \"why\"}")
	}
	d, err := time.ParseDuration(req.For)
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "for: not a duration (like 30m, 4h)")
	}
	sil, err := s.cfg.Alerts.Silence(c.Request().Context(), alert.SilenceRequest{Rule: req.Rule,
		Fingerprint: req.Fingerprint, For: d, By: actor(c), Why: req.Why})
	if status, msg, ok := alertError(err); ok {
		return echo.NewHTTPError(status, msg)
	} else if err != nil {
		return err
	}
	setAuditResult(c, silenceResult(sil))
	return c.JSON(http.StatusCreated, sil)
}

// silenceResult is what the audit log says a silence did.
func silenceResult(s alert.Silence) string {
	what := "rule " + s.Rule
	if s.Fingerprint != "" {
		what += " instance " + s.Fingerprint
	}
	return "silenced " + what + " until " + s.Until.Format(time.RFC3339) + ": " + s.Why
}

// alertError maps refusals to a status and a message the operator can act
// on; ok is false for internal errors.
func alertError(err error) (int, string, bool) {
	switch {
	case err == nil:
		return 0, "", false
	case errors.Is(err, alert.ErrUnknownAlert):
		return http.StatusNotFound, err.Error(), true
	case errors.Is(err, alert.ErrBadRequest):
		return http.StatusUnprocessableEntity, strings.TrimPrefix(err.Error(), alert.ErrBadRequest.Error()+": "), true
	}
	return 0, "", false
}

// alertRefused shows the alerts page with why nothing was done.
func (s *Server) alertRefused(c echo.Context, status int, msg string) error {
	m, err := s.alertListModel(c)
	if err != nil {
		return err
	}
	m.Flash, m.FlashBad = msg, true
	p := s.page(c, "Alerts", false)
	p.Nav = "alerts"
	return s.render(c, status, views.Document(p, views.AlertsBody(m)))
}
