package web

import (
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// apiStreamList answers GET /api/v1/streams: every stream's latest state,
// without configs.
func (s *Server) apiStreamList(c echo.Context) error {
	streams, err := s.cfg.Index.Streams(c.Request().Context())
	if err != nil {
		return err
	}
	return apiJSON(c, list[store.Stream]{Items: nonNil(streams)})
}
