package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/views"
)

// deadLetterShow answers GET /dead-letters/:id: origin, reason, headers,
// payload, history and the actions.
func (s *Server) deadLetterShow(c echo.Context) error {
	m, err := s.deadLetterDetail(c)
	if err != nil {
		return err
	}
	switch c.QueryParam("done") {
	case "redelivered":
		m.Flash = "Redelivered."
	case "discarded":
		m.Flash = "Discarded."
	}
	return s.renderDeadLetter(c, http.StatusOK, m)
}

func (s *Server) deadLetterDetail(c echo.Context) (views.DeadLetterDetail, error) {
	if s.cfg.DeadLetters == nil {
		return views.DeadLetterDetail{}, errNoDesk
	}
	id, err := parseID(c)
	if err != nil {
		return views.DeadLetterDetail{}, err
	}
	ctx := c.Request().Context()
	d, err := s.cfg.DeadLetters.Get(ctx, id)
	if err != nil {
		return views.DeadLetterDetail{}, err
	}
	hist, err := s.cfg.DeadLetters.History(ctx, id)
	if err != nil {
		return views.DeadLetterDetail{}, err
	}
	m := views.DeadLetterDetail{D: d, History: hist, Headers: views.HeaderRows(d.Headers),
		Payload: views.NewPayloadView(d.Payload), CSRF: csrfToken(c)}
	if tp := firstValue(d.Headers, "traceparent"); tp != "" {
		if parts := strings.Split(tp, "-"); len(parts) == 4 && len(parts[1]) == 32 {
			m.TraceID = parts[1]
			if s.cfg.TraceURL != "" {
				m.TraceURL = strings.ReplaceAll(s.cfg.TraceURL, "{trace_id}", m.TraceID)
			}
		}
	}
	return m, nil
}

func (s *Server) renderDeadLetter(c echo.Context, status int, m views.DeadLetterDetail) error {
	p := s.page(c, "Dead letter #"+views.DeadLetterIDText(m.D.ID), false)
	p.Nav = "dead-letters"
	return s.render(c, status, views.Document(p, views.DeadLetterBody(m)))
}

func firstValue(h map[string][]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
