package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// consumerWithHistory is a consumer plus, when asked for, its history:
// omitted without ?history=, an empty list when the window holds no sample.
type consumerWithHistory struct {
	apiConsumer
	History []historyPoint `json:"history,omitzero"`
}

// apiConsumerShow answers GET /api/v1/streams/:stream/consumers/:consumer,
// with ?history=<window> adding the consumer's history over that window.
func (s *Server) apiConsumerShow(c echo.Context) error {
	ctx := c.Request().Context()
	stream, err := pathParam(c, "stream")
	if err != nil {
		return err
	}
	name, err := pathParam(c, "consumer")
	if err != nil {
		return err
	}
	window := c.QueryParam("history")
	var d = defaultWindow
	if window != "" {
		if d, err = parseWindow(window); err != nil {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
		}
	}
	acc, err := s.accountParam(c)
	if err != nil {
		return err
	}
	if acc != nil {
		// Other accounts are kept in memory, the last cycle only: their
		// history is Prometheus's.
		if window != "" {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "history is kept for jetwatch's own account only: other accounts' history is in Prometheus (the jetstream_consumer_* series with their account label)")
		}
		for _, cs := range accountConsumers(acc, stream) {
			if cs.Name == name {
				return apiJSON(c, consumerWithHistory{apiConsumer: newAPIConsumer(s.consumerRows([]store.Consumer{cs}, nil, s.cfg.Now())[0], acc.Name)})
			}
		}
		return notFoundError{"unknown consumer " + name + " on stream " + stream + " in account " + acc.Name}
	}
	cs, err := s.cfg.Index.Consumer(ctx, stream, name)
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"unknown consumer " + name + " on stream " + stream}
	}
	if err != nil {
		return err
	}
	out := consumerWithHistory{apiConsumer: newAPIConsumer(s.consumerRows([]store.Consumer{cs}, nil, s.cfg.Now())[0], s.ownAccount())}
	if window != "" {
		now := s.cfg.Now()
		hist, err := s.cfg.Index.ConsumerHistory(ctx, stream, name, now.Add(-d), now, chartPoints)
		if err != nil {
			return err
		}
		out.History = withRates(hist)
	}
	return apiJSON(c, out)
}
