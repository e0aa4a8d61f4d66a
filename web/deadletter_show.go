package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// deadLetterShow answers GET /dead-letters/:id: origin, reason, headers,
// payload, history and the actions.
func (s *Server) deadLetterShow(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	m, err := s.deadLetterDetail(c, src)
	if err != nil {
		return err
	}
	if !m.PayloadHidden && m.D.PayloadAvailable {
		s.audit(c, audit.Entry{Action: "payload.view", Target: "dead-letter " + views.DeadLetterIDText(m.D.ID), Account: src.account, Result: "shown"})
	}
	switch c.QueryParam("done") {
	case "redelivered":
		m.Flash = "Redelivered."
	case "discarded":
		m.Flash = "Discarded."
	}
	return s.renderDeadLetter(c, http.StatusOK, m)
}

// deadLetterDetail is the page model of the dead letter in the URL, read
// from src.
func (s *Server) deadLetterDetail(c echo.Context, src deadLetterSource) (views.DeadLetterDetail, error) {
	id, err := parseID(c)
	if err != nil {
		return views.DeadLetterDetail{}, err
	}
	ctx := c.Request().Context()
	d, err := src.reads.Get(ctx, id)
	if err != nil {
		return views.DeadLetterDetail{}, err
	}
	hist, err := src.reads.History(ctx, id)
	if err != nil {
		return views.DeadLetterDetail{}, err
	}
	m := views.DeadLetterDetail{History: hist, CSRF: csrfToken(c), Account: src.account, StreamAccount: s.streamAccount(src),
		ActionsUnserved: src.account != "" && src.actions == nil,
		CanAct:          src.actions != nil && principal(c).Role.Allows(auth.Operator)}
	d, m.Redacted, m.PayloadHidden = s.shown(c, d)
	var decodedRedacted bool
	m.Payload, decodedRedacted = s.payloadView(d.Subject, d.Payload)
	m.D, m.Headers, m.Redacted = d, views.HeaderRows(d.Headers), m.Redacted || decodedRedacted
	if tp := firstValue(d.Headers, "traceparent"); tp != "" {
		// The header is the message's, hostile like the rest of it: only a
		// well-formed trace id becomes a link; anything else is shown as
		// text (shortened: the headers table has it whole).
		m.TraceID = tracecontext.TraceIDField(tp)
		m.TraceValid = tracecontext.ValidTraceID(m.TraceID)
		if m.TraceValid && s.cfg.TraceURL != "" {
			m.TraceURL = strings.ReplaceAll(s.cfg.TraceURL, "{trace_id}", m.TraceID)
		}
		if !m.TraceValid {
			m.TraceID = views.Shorten(m.TraceID, 64)
		}
	}
	// The links use what this principal may see: masked values and, for a
	// viewer who may not see payloads, no JSON field of the payload.
	// Journeys are indexed in the main account only.
	if src.account == "" {
		m.JourneyKeys = s.cfg.Journeys.Correlations.Keys(d.Headers, d.Payload)
	}
	return m, nil
}

func (s *Server) renderDeadLetter(c echo.Context, status int, m views.DeadLetterDetail) error {
	title := "Dead letter #" + views.DeadLetterIDText(m.D.ID)
	if m.Account != "" {
		title += " of account " + m.Account
	}
	p := s.page(c, title, false)
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

// shownDeadLetter is a dead letter in API answers and exports, saying
// what was masked or hidden.
type shownDeadLetter struct {
	store.DeadLetter
	// Account is the --account the dead letter is in; empty (and left
	// out) for the main account's.
	Account       string `json:"account,omitempty"`
	Redacted      bool   `json:"redacted,omitempty"`
	PayloadHidden bool   `json:"payload_hidden,omitempty"`
}

// shownJSON is shown for the API and exports.
func (s *Server) shownJSON(c echo.Context, d store.DeadLetter) shownDeadLetter {
	var out shownDeadLetter
	out.DeadLetter, out.Redacted, out.PayloadHidden = s.shown(c, d)
	return out
}

// shown is a dead letter as this principal may see it: redaction rules
// applied, and the payload gone for a viewer under --hide-payloads.
func (s *Server) shown(c echo.Context, d store.DeadLetter) (shown store.DeadLetter, redacted, hidden bool) {
	d, redacted = s.cfg.Redact.DeadLetter(d)
	if s.payloadsHidden(c) {
		d.Payload, hidden = nil, true
	}
	return d, redacted, hidden
}

// payloadsHidden says whether this principal may not see payloads: a
// viewer under --hide-payloads. Their searches leave payloads out too.
func (s *Server) payloadsHidden(c echo.Context) bool {
	return s.cfg.HidePayloads && !principal(c).Role.Allows(auth.Operator)
}

// deadLetterTarget names a dead letter in messages: its id, and its
// account when it is not the main account's, since ids restart in each.
func deadLetterTarget(account string, id uint64) string {
	t := "dead-letter " + views.DeadLetterIDText(id)
	if account != "" {
		t += " of account " + account
	}
	return t
}
