package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// alertAcknowledge answers POST /alerts/ack and redirects to the alerts
// page.
func (s *Server) alertAcknowledge(c echo.Context) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	err := s.cfg.Alerts.Acknowledge(c.Request().Context(), c.FormValue("fingerprint"), actor(c), c.FormValue("note"))
	if status, msg, ok := alertError(err); ok {
		return s.alertRefused(c, status, msg)
	} else if err != nil {
		return err
	}
	setAuditResult(c, "acknowledged "+c.FormValue("fingerprint"))
	return c.Redirect(http.StatusSeeOther, "/alerts?done=acknowledged")
}

// apiAckRequest is the body of POST /api/v1/alerts/ack.
type apiAckRequest struct {
	Fingerprint string `json:"fingerprint"`
	Note        string `json:"note"`
}

// apiAlertAcknowledge answers POST /api/v1/alerts/ack with 204.
func (s *Server) apiAlertAcknowledge(c echo.Context) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	var req apiAckRequest
	if err := c.Bind(&req); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "send JSON: {\"fingerprint\", \"note\"}")
	}
	err := s.cfg.Alerts.Acknowledge(c.Request().Context(), req.Fingerprint, actor(c), req.Note)
	if status, msg, ok := alertError(err); ok {
		return echo.NewHTTPError(status, msg)
	} else if err != nil {
		return err
	}
	setAuditResult(c, "acknowledged "+req.Fingerprint)
	return c.NoContent(http.StatusNoContent)
}
