package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/store"
)

// exportLimit caps one export: past it, narrow the filter.
const exportLimit = 100_000

// deadLetterExport answers GET /dead-letters/export and
// /api/v1/dead-letters/export: every dead letter the filter matches, one
// JSON object per line (headers, and the payload in base64), with the
// redaction rules and --hide-payloads applied as on the pages.
func (s *Server) deadLetterExport(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	f, err := s.deadLetterFilter(c)
	if errors.Is(err, store.ErrBadFilter) {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/x-ndjson")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="dead-letters.ndjson"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	enc := json.NewEncoder(c.Response())
	n, cursor, hidden := 0, "", false
	for n < exportLimit {
		page, err := src.reads.List(ctx, f, 500, cursor)
		if err != nil {
			return fmt.Errorf("export after %d dead letters: %w", n, err)
		}
		ids := make([]uint64, len(page.Items))
		for i, item := range page.Items {
			ids[i] = item.ID
		}
		letters, err := src.reads.GetMany(ctx, ids)
		if err != nil {
			// The answer has begun: its last line says why it stops (the
			// log has the error itself).
			why := internalMessage
			if errors.Is(err, query.ErrMessageUnreadable) {
				why = unreadableMessage
			}
			why = fmt.Sprintf("export stopped after %d dead letters: %s", n, why)
			_ = enc.Encode(map[string]string{"error": why})
			setAuditResult(c, why)
			return fmt.Errorf("export stopped after %d dead letters: %w", n, err)
		}
		for _, id := range ids {
			d, ok := letters[id]
			if !ok {
				continue // deleted from the index since the list
			}
			shown := s.shownJSON(c, d)
			shown.Account = src.account
			hidden = shown.PayloadHidden
			if err := enc.Encode(shown); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if n++; n == exportLimit {
				break
			}
		}
		c.Response().Flush()
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	result := strconv.Itoa(n) + " dead letters"
	if !hidden {
		result += " with payloads"
	}
	if n == exportLimit {
		result += " (stopped at the limit)"
	}
	setAuditResult(c, result)
	return nil
}
