package web

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// apiStreamShow answers GET /api/v1/streams/:stream: the stream with its
// config and the health its page shows.
func (s *Server) apiStreamShow(c echo.Context) error {
	name, err := pathParam(c, "stream")
	if err != nil {
		return err
	}
	acc, err := s.accountParam(c)
	if err != nil {
		return err
	}
	if acc != nil {
		st, err := accountStream(acc, name)
		if err != nil {
			return err
		}
		return apiJSON(c, newAPIStream(s.streamRow(st, s.cfg.Now()), acc.Name))
	}
	st, err := s.cfg.Index.Stream(c.Request().Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"unknown stream " + name}
	}
	if err != nil {
		return err
	}
	return apiJSON(c, newAPIStream(s.streamRow(st, s.cfg.Now()), s.ownAccount()))
}
