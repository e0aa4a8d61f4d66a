package web

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// deadLetterRedeliver answers POST /dead-letters/:id/redeliver (a plain
// redelivery, or the confirmed edit) and redirects to the dead letter, so a
// reload never posts again; a failure is shown on the page, the dead letter
// still pending.
func (s *Server) deadLetterRedeliver(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	actions, err := actionsOf(src)
	if err != nil {
		return err
	}
	m, err := s.deadLetterDetail(c, src)
	if err != nil {
		return err
	}
	req := redeliver.Request{ID: m.D.ID, Actor: actor(c), Subject: c.FormValue("subject")}
	if c.FormValue("edited") == "1" {
		if m.Redacted {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, errEditRedacted)
		}
		req.Payload, req.Headers, err = editedMessage(c, m.D)
		if err != nil {
			setAuditResult(c, err.Error())
			m.Flash, m.FlashBad = err.Error(), true
			return s.renderDeadLetter(c, http.StatusUnprocessableEntity, m)
		}
	}
	a, err := actions.Redeliver(c.Request().Context(), req)
	if status, msg, ok := actionError(err); ok {
		setAuditResult(c, msg)
		fresh, ferr := s.deadLetterDetail(c, src)
		if ferr == nil {
			m = fresh
		}
		m.Flash, m.FlashBad = msg, true
		return s.renderDeadLetter(c, status, m)
	} else if err != nil {
		return err
	}
	setAuditResult(c, redeliveredResult(a))
	return c.Redirect(http.StatusSeeOther, views.AccountURL(views.DeadLetterURL(m.D.ID)+"?done=redelivered", src.account))
}

// editedMessage is the payload and headers a confirmed edit sends, nil
// for the parts it left unchanged, so those go out as the original's
// bytes. The confirm form carries the payload the preview showed in
// payload_b64, exactly; a plain "payload" field (a client posting the edit
// directly) is checked as the preview checks it.
func editedMessage(c echo.Context, d store.DeadLetter) ([]byte, map[string][]string, error) {
	var payload []byte
	if v, ok := formValue(c, "payload_b64"); ok {
		var err error
		if payload, err = base64.StdEncoding.DecodeString(v); err != nil {
			return nil, nil, errors.New("the confirmed edit's payload is damaged (not base64): nothing was sent; preview the edit again")
		}
	} else {
		payload = views.NewPayloadEdit(d.Payload, d.PayloadAvailable, c.FormValue("payload")).Send
	}
	if d.PayloadAvailable && bytes.Equal(payload, d.Payload) {
		payload = nil
	}
	text := c.FormValue("headers")
	headers, err := parseHeaderLines(text)
	if err != nil {
		return nil, nil, err
	}
	if headersUnchanged(d, text) {
		headers = nil
	}
	return payload, headers, nil
}

// headersUnchanged says the edit's headers are the ones the form showed,
// line ends aside.
func headersUnchanged(d store.DeadLetter, text string) bool {
	norm := func(s string) string { return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n") }
	return norm(text) == norm(views.HeadersText(d.Headers))
}

// formValue is a form field and whether it was sent at all.
func formValue(c echo.Context, name string) (string, bool) {
	form, err := c.FormParams()
	if err != nil {
		return "", false
	}
	v, ok := form[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// errEditRedacted refuses an edit of a dead letter shown with masks.
const errEditRedacted = "editing is off for this dead letter: some of its values are redacted, and an edit would send the masks; redeliver it unchanged instead"

// redeliveredResult is the audit log's account of a redelivery.
func redeliveredResult(a dlq.Action) string {
	r := "redelivered to " + a.Subject
	if a.Edited {
		r = "redelivered, edited, to " + a.Subject
	}
	if a.AckStream != "" {
		r += fmt.Sprintf(" (stored in %s #%d)", a.AckStream, a.AckSeq)
	}
	return r
}

// deadLetterEdit answers POST /dead-letters/:id/edit: the edit as a diff,
// to confirm before anything is sent.
func (s *Server) deadLetterEdit(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	if _, err := actionsOf(src); err != nil { // an edit is the first step of a redelivery
		return err
	}
	m, err := s.deadLetterDetail(c, src)
	if err != nil {
		return err
	}
	if m.Redacted {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, errEditRedacted)
	}
	headers, err := parseHeaderLines(c.FormValue("headers"))
	if err != nil {
		m.Flash, m.FlashBad = err.Error(), true
		return s.renderDeadLetter(c, http.StatusUnprocessableEntity, m)
	}
	// The payload is compared with the text the form showed (indented
	// JSON against indented JSON), and the preview carries exactly what
	// will be sent.
	m.Preview = &views.EditPreview{
		Subject:     strings.TrimSpace(c.FormValue("subject")),
		Payload:     views.NewPayloadEdit(m.D.Payload, m.D.PayloadAvailable, c.FormValue("payload")),
		HeadersText: c.FormValue("headers"),
		HeaderDiff:  views.Diff(strings.TrimRight(views.HeadersText(m.D.Headers), "\n"), strings.TrimRight(views.HeadersText(headers), "\n")),
	}
	if m.Preview.Subject == "" {
		m.Preview.Subject = m.D.Subject
	}
	return s.renderDeadLetter(c, http.StatusOK, m)
}

// deadLetterDiscard answers POST /dead-letters/:id/discard.
func (s *Server) deadLetterDiscard(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	actions, err := actionsOf(src)
	if err != nil {
		return err
	}
	m, err := s.deadLetterDetail(c, src)
	if err != nil {
		return err
	}
	_, err = actions.Discard(c.Request().Context(), m.D.ID, actor(c), strings.TrimSpace(c.FormValue("note")))
	if status, msg, ok := actionError(err); ok {
		setAuditResult(c, msg)
		m.Flash, m.FlashBad = msg, true
		return s.renderDeadLetter(c, status, m)
	} else if err != nil {
		return err
	}
	setAuditResult(c, "discarded")
	return c.Redirect(http.StatusSeeOther, views.AccountURL(views.DeadLetterURL(m.D.ID)+"?done=discarded", src.account))
}

// actionError maps the redeliverer's refusals to a status and a message the
// operator can act on; ok is false for internal errors.
func actionError(err error) (int, string, bool) {
	switch {
	case err == nil:
		return 0, "", false
	case errors.Is(err, redeliver.ErrAlreadyRedelivered), errors.Is(err, redeliver.ErrAlreadyDiscarded):
		return http.StatusConflict, "Nothing sent: this dead letter is " + err.Error() + ".", true
	case errors.Is(err, redeliver.ErrInProgress), errors.Is(err, redeliver.ErrInterrupted):
		return http.StatusConflict, "Nothing done: " + err.Error() + ".", true
	case errors.Is(err, redeliver.ErrNoStream), errors.Is(err, redeliver.ErrBadSubject), errors.Is(err, redeliver.ErrPayloadUnavailable),
		errors.Is(err, redeliver.ErrTargetRefused), errors.Is(err, redeliver.ErrBadHeader), errors.Is(err, redeliver.ErrTooLarge):
		return http.StatusUnprocessableEntity, err.Error(), true
	case errors.Is(err, redeliver.ErrNATSUnavailable):
		return http.StatusServiceUnavailable, err.Error() + " Check jetwatch's connection to NATS and retry.", true
	case errors.Is(err, redeliver.ErrNotSent), errors.Is(err, redeliver.ErrNotRecorded):
		return http.StatusBadGateway, err.Error(), true
	}
	return 0, "", false
}

// parseHeaderLines reads "Name: value" lines.
func parseHeaderLines(text string) (map[string][]string, error) {
	h := map[string][]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || !redeliver.ValidHeaderName(name) {
			return nil, fmt.Errorf("header line %d is not \"Name: value\" with a name of letters, digits and -_. only", i+1)
		}
		h[name] = append(h[name], strings.TrimSpace(value))
	}
	return h, nil
}
