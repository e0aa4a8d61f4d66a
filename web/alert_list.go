package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/views"
)

var errNoAlerts = echo.NewHTTPError(http.StatusServiceUnavailable, "alerting is off: start jetwatch with --rules FILE (JETWATCH_RULES)")

// alertList answers GET /alerts: every rule with its state, the silences
// in force and the receivers.
func (s *Server) alertList(c echo.Context) error {
	p := s.page(c, "Alerts", true)
	p.Nav = "alerts"
	if s.cfg.Alerts == nil {
		return s.renderPage(c, p, views.AlertsOff())
	}
	m, err := s.alertListModel(c)
	if err != nil {
		return err
	}
	switch c.QueryParam("done") {
	case "silenced":
		m.Flash = "Silenced. Notifications stop until the silence ends; the state still shows here."
	case "acknowledged":
		m.Flash = "Acknowledged. Reminders stop until the alert resolves."
	}
	return s.renderPage(c, p, views.AlertsBody(m))
}

func (s *Server) alertListModel(c echo.Context) (views.AlertList, error) {
	statuses, at := s.cfg.Alerts.Statuses()
	silences, err := s.cfg.Alerts.Silences(c.Request().Context())
	if err != nil {
		return views.AlertList{}, err
	}
	// A silence made since the last evaluation shows at once.
	now := s.cfg.Now()
	for i, rs := range statuses {
		instances := slices.Clone(rs.Instances)
		for j, in := range instances {
			for k, sil := range silences {
				if in.Silence == nil && sil.Covers(rs.Rule.Name, in.Fingerprint, now) {
					instances[j].Silence = &silences[k]
				}
			}
		}
		statuses[i].Instances = instances
	}
	rules := s.cfg.Alerts.Rules()
	return views.AlertList{Rules: statuses, Receivers: rules.Receivers, Silences: silences, Source: rules.Source,
		EvaluatedAt: at, CSRF: csrfToken(c), Now: now, CanAct: principal(c).Role.Allows(auth.Operator)}, nil
}

// apiAlert is one rule in GET /api/v1/alerts.
type apiAlert struct {
	Rule      string           `json:"rule"`
	Kind      string           `json:"kind"`
	Severity  string           `json:"severity"`
	State     string           `json:"state"`
	Instances []alert.Instance `json:"instances"`
	Error     string           `json:"error,omitempty"`
	// EvaluatedAt is when the rule was last evaluated.
	EvaluatedAt time.Time `json:"evaluated_at,omitzero"`
}

// apiAlertList answers GET /api/v1/alerts.
func (s *Server) apiAlertList(c echo.Context) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	statuses, at := s.cfg.Alerts.Statuses()
	items := make([]apiAlert, 0, len(statuses))
	for _, rs := range statuses {
		items = append(items, apiAlert{Rule: rs.Rule.Name, Kind: rs.Rule.Kind, Severity: rs.Rule.Severity, State: rs.State,
			Instances: nonNil(rs.Instances), Error: rs.Error, EvaluatedAt: at})
	}
	return apiJSON(c, list[apiAlert]{Items: items})
}
