package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/streambrowse"
	"github.com/jetwatch/jetwatch/views"
)

// StreamMessages reads a stream's messages without consuming them.
// *streambrowse.Browser implements it: an unknown stream wraps
// streambrowse.ErrUnknownStream, a bad name or filter natsname.ErrInvalid.
type StreamMessages interface {
	Messages(ctx context.Context, stream string, q streambrowse.Query) (streambrowse.Page, error)
}

var errNoBrowser = echo.NewHTTPError(http.StatusServiceUnavailable, "the stream browser is not running: jetwatch is still connecting to NATS")

// browseRequest is a stream browser request, checked.
type browseRequest struct {
	stream string
	q      streambrowse.Query
	form   views.StreamMessagesFilter
}

// badBrowse is a 400 saying what to write instead.
func badBrowse(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// browseParams reads GET /streams/:stream/messages's parameters:
// start_seq, order (newest|oldest), since, around, subject, limit and
// include_internal. Every refusal says what to write instead.
func (s *Server) browseParams(c echo.Context) (browseRequest, error) {
	var r browseRequest
	if err := s.ownAccountOnly(c, "browsing messages"); err != nil {
		return r, err
	}
	name, err := pathParam(c, "stream")
	if err != nil {
		return r, err
	}
	if err := natsname.Name(name); err != nil {
		return r, notFoundError{"no stream can be named " + shortQuote(name) + ": " + strings.TrimPrefix(err.Error(), natsname.ErrInvalid.Error()+" ")}
	}
	r.stream = name
	qp := c.QueryParams()
	r.form = views.StreamMessagesFilter{Subject: strings.TrimSpace(qp.Get("subject")), StartSeq: strings.TrimSpace(qp.Get("start_seq")),
		Since: strings.TrimSpace(qp.Get("since")), Order: qp.Get("order"), Limit: strings.TrimSpace(qp.Get("limit")),
		IncludeInternal: qp.Get("include_internal") == "1"}
	seqParam := func(key, v string) (uint64, error) {
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return 0, badBrowse("%s: %s is not a stream sequence; write a whole number from 1, e.g. %s=1200", key, shortQuote(v), key)
		}
		return n, nil
	}
	if r.q.StartSeq, err = seqParam("start_seq", r.form.StartSeq); err != nil {
		return r, err
	}
	if r.q.Around, err = seqParam("around", strings.TrimSpace(qp.Get("around"))); err != nil {
		return r, err
	}
	if r.q.Since, err = s.parseTime(r.form.Since); err != nil {
		return r, badBrowse("since: %v; write e.g. since=2026-11-26T10:00:00Z or since=1h", err)
	}
	switch r.form.Order {
	case "":
		// Newest first from the top; from a sequence or a time, onwards.
		r.q.Newest = r.q.StartSeq == 0 && r.q.Since.IsZero() && r.q.Around == 0
	case "newest":
		if !r.q.Since.IsZero() || r.q.Around > 0 {
			return r, badBrowse("order=newest reads back from start_seq or from the newest message; since and around read onwards: drop order or use start_seq")
		}
		r.q.Newest = true
	case "oldest":
		if r.q.StartSeq == 0 && r.q.Since.IsZero() && r.q.Around == 0 {
			r.q.StartSeq = 1
		}
	default:
		return r, badBrowse("order: %s; write order=newest or order=oldest", shortQuote(r.form.Order))
	}
	if r.form.Limit != "" {
		n, err := strconv.Atoi(r.form.Limit)
		if err != nil || n < 1 || n > streambrowse.MaxLimit {
			return r, badBrowse("limit: %s; write a number from 1 to %d, e.g. limit=%d", shortQuote(r.form.Limit), streambrowse.MaxLimit, streambrowse.DefaultLimit)
		}
		r.q.Limit = n
	}
	if r.form.Subject != "" {
		if err := natsname.Filter(r.form.Subject); err != nil {
			return r, badBrowse("subject: %s; write a subject or a filter with * for one token and > for the rest, e.g. subject=orders.*.created",
				strings.TrimPrefix(err.Error(), natsname.ErrInvalid.Error()+" "))
		}
		r.q.Subject = r.form.Subject
	}
	if err := streambrowse.Check(name, r.q); err != nil {
		return r, badBrowse("%s; give one of start_seq, since and around", strings.TrimPrefix(err.Error(), natsname.ErrInvalid.Error()+" "))
	}
	return r, s.mayBrowse(c, name, r.form.IncludeInternal)
}

// mayBrowse refuses jetwatch's own streams and those of KV buckets and
// object stores, unless an admin asks for them with include_internal=1:
// they hold dead letters, audit entries, tokens and sessions.
func (s *Server) mayBrowse(c echo.Context, name string, include bool) error {
	internal := store.OwnStreamName(name) || strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_") ||
		slices.Contains(s.cfg.OwnStreams, name)
	if !internal {
		if st, err := s.cfg.Index.Stream(c.Request().Context(), name); err == nil && st.Own {
			internal = true
		}
	}
	switch {
	case !internal:
		return nil
	case !principal(c).Role.Allows(auth.Admin):
		msg := name + " is one of jetwatch's own streams or a KV or object store's: only an admin may browse it"
		if include {
			// Asked for on purpose: someone tried what their role does not allow.
			s.audit(c, audit.Entry{Action: "payload.view", Target: "stream " + name, Result: "refused: " + msg, Failed: true})
		}
		return echo.NewHTTPError(http.StatusForbidden, msg)
	case !include:
		return echo.NewHTTPError(http.StatusForbidden, name+" is one of jetwatch's own streams or a KV or object store's: add include_internal=1 to browse it")
	}
	return nil
}

// browse reads the page a request asks for.
func (s *Server) browse(c echo.Context, r browseRequest) (streambrowse.Page, error) {
	if s.cfg.Messages == nil {
		return streambrowse.Page{}, errNoBrowser
	}
	p, err := s.cfg.Messages.Messages(c.Request().Context(), r.stream, r.q)
	switch {
	case errors.Is(err, streambrowse.ErrUnknownStream):
		return p, notFoundError{"there is no stream " + r.stream + " on the NATS server; it may have been deleted"}
	case errors.Is(err, natsname.ErrInvalid):
		return p, badBrowse("%s", strings.TrimPrefix(err.Error(), natsname.ErrInvalid.Error()+" "))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting):
		s.logger.WarnContext(c.Request().Context(), "stream browser: NATS did not answer", "stream", r.stream, "err", err)
		return p, echo.NewHTTPError(http.StatusServiceUnavailable, "NATS did not answer in time: try again")
	}
	return p, err
}

// shownMessage is a message as this principal may see it.
type shownMessage struct {
	streambrowse.Message
	PayloadKind string `json:"payload_kind,omitempty"`
	// PayloadType is a protobuf payload's message type; Decoded a
	// protobuf, MessagePack or CBOR payload as JSON, redaction applied.
	PayloadType   string          `json:"payload_type,omitempty"`
	Decoded       json.RawMessage `json:"decoded,omitempty"`
	Redacted      bool            `json:"redacted,omitempty"`
	PayloadHidden bool            `json:"payload_hidden,omitempty"`
	view          views.PayloadView
}

// showMessage applies redaction and --hide-payloads to m, as to a dead
// letter, and decodes its payload.
func (s *Server) showMessage(c echo.Context, m streambrowse.Message) shownMessage {
	out := shownMessage{Message: m}
	var hc bool
	out.Headers, hc = s.cfg.Redact.Headers(m.Headers)
	if s.payloadsHidden(c) {
		out.Payload, out.PayloadHidden, out.Redacted = nil, true, hc
		return out
	}
	if m.Truncated && s.cfg.Redact.MasksPayloads() {
		// Masking needs the whole JSON, and the browser read only the
		// start: what it would show unmasked is withheld.
		out.Payload, out.Redacted, out.PayloadKind = nil, true, "withheld"
		out.view = views.PayloadView{Kind: "withheld", Note: fmt.Sprintf("Not shown: this %s payload is larger than the %s the browser reads, "+
			"and redaction rules need the whole of it to mask it.", views.Bytes(int64(m.Size)), views.Bytes(int64(streambrowse.MaxShownPayload)))}
		return out
	}
	var pc bool
	out.Payload, pc = s.cfg.Redact.Payload(m.Payload)
	var dc bool
	out.view, dc = s.payloadView(m.Subject, out.Payload)
	if dc {
		// The masks are in the decoding only: the bytes would show what
		// they hide.
		out.Payload = nil
	}
	out.PayloadKind, out.PayloadType, out.Redacted = out.view.Kind, out.view.Type, hc || pc || dc
	if out.view.Decoded() && json.Valid([]byte(out.view.Text)) {
		out.Decoded = json.RawMessage(out.view.Text)
	}
	return out
}

// payloadView decodes a payload sent on subject, with the configured
// protobuf types, and masks the redacted fields of a binary payload
// decoded into JSON (protobuf, msgpack, CBOR), saying whether any was.
func (s *Server) payloadView(subject string, payload []byte) (views.PayloadView, bool) {
	v := views.DecodePayload(payload, subject, s.cfg.Proto)
	if !v.Decoded() || !s.cfg.Redact.Active() {
		return v, false
	}
	masked, changed := s.cfg.Redact.Payload([]byte(v.Text))
	if changed {
		v.Text, _ = views.PrettyJSON(masked)
	}
	return v, changed
}

// auditBrowse records that payloads of a stream were shown.
func (s *Server) auditBrowse(c echo.Context, stream string, items []shownMessage, how string) {
	if len(items) == 0 || items[0].PayloadHidden {
		return
	}
	lo, hi := items[0].Seq, items[len(items)-1].Seq
	s.audit(c, audit.Entry{Action: "payload.view", Target: fmt.Sprintf("stream %s messages %d-%d", stream, min(lo, hi), max(lo, hi)),
		Result: fmt.Sprintf("%s (%d messages)", how, len(items))})
}

// streamMessages answers GET /streams/:stream/messages: the stream
// browser's page.
func (s *Server) streamMessages(c echo.Context) error {
	r, err := s.browseParams(c)
	if err != nil {
		return err
	}
	page, err := s.browse(c, r)
	if err != nil {
		return err
	}
	m := views.StreamMessages{Stream: r.stream, Filter: r.form, Newest: page.Newest, FirstSeq: page.FirstSeq, LastSeq: page.LastSeq,
		Around: r.q.Around, PayloadHidden: s.payloadsHidden(c)}
	shown := make([]shownMessage, len(page.Items))
	for i, msg := range page.Items {
		sm := s.showMessage(c, msg)
		shown[i] = sm
		m.Redacted = m.Redacted || sm.Redacted
		m.Items = append(m.Items, views.StreamMessageRow{Seq: msg.Seq, Subject: msg.Subject, Time: msg.Time, Size: msg.Size,
			Truncated: msg.Truncated, Kept: len(msg.Payload), Headers: views.HeaderRows(sm.Headers), Payload: sm.view})
	}
	if page.NextSeq > 0 {
		q := nextQuery(c.QueryParams(), page)
		m.NextURL = views.StreamMessagesURL(r.stream, q)
	}
	if r.q.Around > 0 && !slices.ContainsFunc(page.Items, func(m streambrowse.Message) bool { return m.Seq == r.q.Around }) {
		why := "acknowledged on a work queue or interest stream, deleted, or removed by its limits"
		if r.q.Subject != "" {
			why += "; or it is not on " + r.q.Subject
		}
		m.Note = fmt.Sprintf("Message #%d is not in %s (%s): what is around it is shown.", r.q.Around, r.stream, why)
	}
	if page.ScanStopped {
		m.Note = fmt.Sprintf("Looked back over many messages and found %d that match; Older goes on from sequence %d.", len(page.Items), page.NextSeq)
	}
	s.auditBrowse(c, r.stream, shown, "shown")
	p := s.page(c, "Messages of "+r.stream, false)
	return s.renderPage(c, p, views.StreamMessagesBody(m))
}

// nextQuery is the query of the page after page: the same filters, from
// its next sequence, in the same order.
func nextQuery(q url.Values, page streambrowse.Page) url.Values {
	next := url.Values{}
	for _, k := range []string{"subject", "limit", "include_internal"} {
		if v := q.Get(k); v != "" {
			next.Set(k, v)
		}
	}
	next.Set("start_seq", strconv.FormatUint(page.NextSeq, 10))
	if page.Newest {
		next.Set("order", "newest")
	} else {
		next.Set("order", "oldest")
	}
	return next
}

// apiStreamMessages answers GET /api/v1/streams/:stream/messages:
// {"items": [{"seq", "subject", "time", "size", "headers", "payload"
// (base64)}], "next_seq"}.
func (s *Server) apiStreamMessages(c echo.Context) error {
	r, err := s.browseParams(c)
	if err != nil {
		return err
	}
	page, err := s.browse(c, r)
	if err != nil {
		return err
	}
	items := make([]shownMessage, len(page.Items))
	for i, m := range page.Items {
		items[i] = s.showMessage(c, m)
	}
	s.auditBrowse(c, r.stream, items, "shown (API)")
	order := "oldest"
	if page.Newest {
		order = "newest"
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items, "next_seq": page.NextSeq, "order": order,
		"first_seq": page.FirstSeq, "last_seq": page.LastSeq})
}
