package web

import (
	"github.com/labstack/echo/v4"
)

// apiDeadLetterIndex answers GET /api/v1/dead-letter-index: how far the
// index is behind the DLQ stream, whether it stalled and why, and the dead
// letters it could not store.
func (s *Server) apiDeadLetterIndex(c echo.Context) error {
	if s.cfg.DeadLetterIndex == nil {
		return errNoDeadLetters
	}
	st, err := s.cfg.DeadLetterIndex.Status(c.Request().Context())
	if err != nil {
		return err
	}
	return apiJSON(c, st)
}
