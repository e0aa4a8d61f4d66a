package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// apiDeadLetterList answers GET /api/v1/dead-letters.
func (s *Server) apiDeadLetterList(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	f, err := s.deadLetterFilter(c)
	if err == nil {
		var limit int
		if limit, err = pageLimit(c); err == nil {
			var page store.DeadLetterPage
			page, err = src.reads.List(c.Request().Context(), f, limit, c.QueryParam("cursor"))
			if err == nil {
				return apiJSON(c, listedPage(page, src.account))
			}
		}
	}
	if errors.Is(err, store.ErrBadFilter) {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	return err
}

// apiDeadLetterShow answers GET /api/v1/dead-letters/:id with headers and
// the payload in standard base64.
func (s *Server) apiDeadLetterShow(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	id, err := parseID(c)
	if err != nil {
		return err
	}
	d, err := src.reads.Get(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"no " + deadLetterTarget(src.account, id)}
	}
	if err != nil {
		return err
	}
	shown := s.shownJSON(c, d)
	shown.Account = src.account
	if shown.Headers == nil {
		shown.Headers = map[string][]string{}
	}
	if shown.Payload == nil {
		shown.Payload = []byte{}
	}
	if !shown.PayloadHidden && d.PayloadAvailable {
		s.audit(c, audit.Entry{Action: "payload.view", Target: "dead-letter " + views.DeadLetterIDText(id), Account: src.account, Result: "shown (API)"})
	}
	return apiJSON(c, shown)
}

type redeliverBody struct {
	Subject string              `json:"subject"`
	Payload *[]byte             `json:"payload"`
	Headers map[string][]string `json:"headers"`
}

// apiDeadLetterRedeliver answers POST /api/v1/dead-letters/:id/redeliver
// with {"subject"?, "payload"? (base64), "headers"?}.
func (s *Server) apiDeadLetterRedeliver(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	actions, err := actionsOf(src)
	if err != nil {
		return err
	}
	id, err := parseID(c)
	if err != nil {
		return err
	}
	var body redeliverBody
	if c.Request().ContentLength != 0 {
		if err := c.Bind(&body); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "the body is not the JSON this endpoint takes: {\"subject\", \"payload\" (base64), \"headers\"}")
		}
	}
	req := redeliver.Request{ID: id, Actor: actor(c), Subject: body.Subject, Headers: body.Headers}
	if body.Payload != nil {
		req.Payload = *body.Payload
	}
	a, err := actions.Redeliver(c.Request().Context(), req)
	return s.apiAction(c, a, err)
}

// apiDeadLetterDiscard answers POST /api/v1/dead-letters/:id/discard.
func (s *Server) apiDeadLetterDiscard(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	actions, err := actionsOf(src)
	if err != nil {
		return err
	}
	id, err := parseID(c)
	if err != nil {
		return err
	}
	var body struct {
		Note string `json:"note"`
	}
	if c.Request().ContentLength != 0 {
		if err := c.Bind(&body); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "the body is not JSON: {\"note\"}")
		}
	}
	a, err := actions.Discard(c.Request().Context(), id, actor(c), body.Note)
	return s.apiAction(c, a, err)
}

func (s *Server) apiAction(c echo.Context, a dlq.Action, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"no dead letter " + c.Param("id")}
	}
	if status, msg, ok := actionError(err); ok {
		return echo.NewHTTPError(status, msg)
	}
	if err != nil {
		return err
	}
	if a.Action == dlq.ActionRedeliver {
		setAuditResult(c, redeliveredResult(a))
	} else {
		setAuditResult(c, "discarded")
	}
	return apiJSON(c, a)
}

// listedDeadLetter is a dead letter in GET /api/v1/dead-letters: with its
// account when it is not the main account's (the main account's answer
// is as it always was).
type listedDeadLetter struct {
	store.DeadLetter
	Account string `json:"account,omitempty"`
}

// listedPage is page as the API lists it.
func listedPage(page store.DeadLetterPage, account string) any {
	if account == "" {
		return page
	}
	items := make([]listedDeadLetter, len(page.Items))
	for i, d := range page.Items {
		items[i] = listedDeadLetter{d, account}
	}
	return struct {
		Items      []listedDeadLetter `json:"items"`
		NextCursor string             `json:"next_cursor"`
	}{items, page.NextCursor}
}
