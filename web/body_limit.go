package web

import (
	"bytes"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/views"
)

// Request body limits, by what a route legitimately takes.
const (
	// defaultBodyLimit is plenty for sign-in, notes, silences and tokens.
	defaultBodyLimit = 64 << 10
	// selectionBodyLimit takes a bulk selection of 10,000 dead letter ids.
	selectionBodyLimit = 1 << 20
	// editBodyLimit takes an edited payload of up to 1 MiB (the server's
	// default max_payload) form-encoded or in base64, with its headers.
	editBodyLimit = 4 << 20
)

// bodyLimits are the routes that take more than defaultBodyLimit, by
// "METHOD /path" as routed (a test checks each is a route).
var bodyLimits = map[string]int64{
	"POST /dead-letters/:id/redeliver":        editBodyLimit,
	"POST /dead-letters/:id/edit":             editBodyLimit,
	"POST /api/v1/dead-letters/:id/redeliver": editBodyLimit,
	"POST /dead-letters/bulk/plan":            selectionBodyLimit,
	"POST /dead-letters/bulk":                 selectionBodyLimit,
	"POST /api/v1/redeliveries":               selectionBodyLimit,
}

// bodyLimit is the most the matched route takes.
func bodyLimit(c echo.Context) int64 {
	if n, ok := bodyLimits[c.Request().Method+" "+c.Path()]; ok {
		return n
	}
	return defaultBodyLimit
}

// limitBodies refuses a body larger than its route takes with 413 before
// anything reads it, and reads the rest whole: a handler never sees a body
// cut short (a form parsed from half a body would lose its fields and
// could send the unedited message).
func limitBodies(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			return next(c)
		}
		limit := bodyLimit(c)
		if r.ContentLength > limit {
			return bodyTooLarge(limit)
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "the request body could not be read to its end: nothing was done, send it again")
		}
		if int64(len(body)) > limit {
			return bodyTooLarge(limit)
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return next(c)
	}
}

func bodyTooLarge(limit int64) error {
	msg := "the request body is larger than " + views.Bytes(limit) + ", the most this route takes: nothing was done"
	if limit >= editBodyLimit {
		msg += " (an edited payload may be up to 1 MiB)"
	}
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge, msg)
}
