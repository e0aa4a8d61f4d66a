package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

func (s *Server) apiConsumerList(c echo.Context) error {
	ctx := c.Request().Context()
	stream := c.Param("stream")
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

// consumerWithHistory is a consumer plus, when asked for, its history.
type consumerWithHistory struct {
	store.Consumer
	History []historyPoint `json:"history,omitempty"`
}

func (s *Server) apiConsumerShow(c echo.Context) error {
	ctx := c.Request().Context()
	stream, name := c.Param("stream"), c.Param("consumer")
	var window string
	if h := c.QueryParam("history"); h != "" {
		window = h
	}
	d, err := parseWindow(window)
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	cs, err := s.cfg.Index.Consumer(ctx, stream, name)
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"unknown consumer " + name + " on stream " + stream}
	}
	if err != nil {
		return err
	}
	out := consumerWithHistory{Consumer: cs}
	if window != "" {
		now := s.cfg.Now()
		hist, err := s.cfg.Index.ConsumerHistory(ctx, stream, name, now.Add(-d), now, chartPoints)
		if err != nil {
			return err
		}
		out.History = nonNil(withRates(hist))
	}
	return apiJSON(c, out)
}
