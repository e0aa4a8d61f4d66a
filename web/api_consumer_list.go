package web

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// apiConsumerList answers GET /api/v1/streams/:stream/consumers. An unknown
// stream is a 404, not an empty list, so a typo is not mistaken for a
// stream without consumers.
func (s *Server) apiConsumerList(c echo.Context) error {
	ctx := c.Request().Context()
	stream, err := pathParam(c, "stream")
	if err != nil {
		return err
	}
	if _, err := s.cfg.Index.Stream(ctx, stream); errors.Is(err, store.ErrNotFound) {
		return notFoundError{"unknown stream " + stream}
	} else if err != nil {
		return err
	}
	consumers, err := s.cfg.Index.Consumers(ctx, stream)
	if err != nil {
		return err
	}
	return apiJSON(c, list[store.Consumer]{Items: nonNil(consumers)})
}
