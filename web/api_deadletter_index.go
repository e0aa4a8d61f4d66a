package web

import (
	"errors"

	"github.com/labstack/echo/v4"
)

// apiDeadLetterIndex answers GET /api/v1/dead-letter-index: how far the
// index is behind the DLQ stream, whether it stalled and why, and the dead
// letters it could not store.
func (s *Server) apiDeadLetterIndex(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil && !errors.Is(err, errNoDeadLetters) { // the index may be served without the reads
		return err
	}
	index := s.cfg.DeadLetterIndex
	if src.account != "" {
		index = src.index
	}
	if index == nil {
		return errNoDeadLetters
	}
	st, err := index.Status(c.Request().Context())
	if err != nil {
		return err
	}
	return apiJSON(c, st)
}
