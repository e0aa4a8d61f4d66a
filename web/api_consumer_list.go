package web

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// apiConsumerList answers GET /api/v1/streams/:stream/consumers. An unknown
// stream is a 404, not an empty list, so a typo is not mistaken for a
// stream without consumers. Health is the one the stream's page shows.
func (s *Server) apiConsumerList(c echo.Context) error {
	ctx := c.Request().Context()
	stream, err := pathParam(c, "stream")
	if err != nil {
		return err
	}
	acc, err := s.accountParam(c)
	if err != nil {
		return err
	}
	var consumers []store.Consumer
	account := s.ownAccount()
	if acc != nil {
		account = acc.Name
		if _, err := accountStream(acc, stream); err != nil {
			return err
		}
		consumers = accountConsumers(acc, stream)
	} else {
		if _, err := s.cfg.Index.Stream(ctx, stream); errors.Is(err, store.ErrNotFound) {
			return notFoundError{"unknown stream " + stream}
		} else if err != nil {
			return err
		}
		if consumers, err = s.cfg.Index.Consumers(ctx, stream); err != nil {
			return err
		}
	}
	rows := s.consumerRows(consumers, nil, s.cfg.Now())
	items := make([]apiConsumer, len(rows))
	for i, r := range rows {
		items[i] = newAPIConsumer(r, account)
	}
	return apiJSON(c, list[apiConsumer]{Items: items})
}
