package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// consumerShow answers GET /streams/:stream/consumers/:consumer?window=:
// the consumer's config, state, rates and history. With ?account= naming
// another account, that account's consumer as the last cycle read it,
// read-only.
func (s *Server) consumerShow(c echo.Context) error {
	ctx := c.Request().Context()
	stream, err := pathParam(c, "stream")
	if err != nil {
		return err
	}
	name, err := pathParam(c, "consumer")
	if err != nil {
		return err
	}
	window, d, err := pageWindow(c.QueryParam("window"))
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	acc, err := s.accountParam(c)
	if err != nil {
		return err
	}
	if acc != nil {
		return s.accountConsumerShow(c, acc, stream, name)
	}
	cs, err := s.cfg.Index.Consumer(ctx, stream, name)
	if errors.Is(err, store.ErrNotFound) {
		// Say which of the two is unknown: a deleted stream takes its
		// consumers with it.
		if _, serr := s.cfg.Index.Stream(ctx, stream); errors.Is(serr, store.ErrNotFound) {
			return streamNotFound(stream)
		}
		return notFoundError{"jetwatch has not seen consumer " + name + " on stream " + stream + "; it may have been deleted, or not been sampled yet."}
	}
	if err != nil {
		return err
	}
	p := s.page(c, "Consumer "+stream+" / "+name, true)
	since := p.Now.Add(-d)
	hist, err := s.cfg.Index.ConsumerHistory(ctx, stream, name, since, p.Now, chartPoints)
	if err != nil {
		return err
	}
	points := withRates(hist)
	n := len(points)
	times := make([]time.Time, n)
	pending, ackPending, redelivered := make([]float64, n), make([]float64, n), make([]float64, n)
	delivered, acked := make([]float64, n), make([]float64, n)
	for i, h := range points {
		times[i] = h.At
		pending[i], ackPending[i], redelivered[i] = float64(h.NumPending), float64(h.NumAckPending), float64(h.NumRedelivered)
		delivered[i], acked[i] = h.DeliveredPerSec, h.AckedPerSec
	}
	// The first point has no predecessor to derive a rate from.
	rateTimes := rest(times)
	breakers, err := s.cfg.Index.Breakers(ctx, p.Now)
	if err != nil {
		return err
	}
	var guards []store.Breaker
	for _, b := range breakers {
		if b.Stream == cs.Stream && b.Consumer == cs.Name {
			guards = append(guards, b)
		}
	}
	m := views.ConsumerPage{
		Breakers: guards,
		Page:     p, Consumer: views.ConsumerRow{Consumer: cs, Stale: s.stale(cs.SampledAt, p.Now)},
		Window: window, Windows: windows,
		Pending: views.NewLineChart("Pending, ack pending and redelivered", "chart-pending", since, p.Now, times, views.CountAxis,
			views.Series{Name: "pending", Class: "s1", Values: pending},
			views.Series{Name: "ack pending", Class: "s2", Values: ackPending},
			views.Series{Name: "redelivered", Class: "s3", Values: redelivered}),
		Rates: views.NewLineChart("Delivered and acked per second", "chart-rates", since, p.Now, rateTimes, views.RateAxis,
			views.Series{Name: "delivered/s", Class: "s1", Values: rest(delivered)},
			views.Series{Name: "acked/s", Class: "s2", Values: rest(acked)}),
		ConfigRaw: indentJSON(cs.Config),
		Pause:     s.pauseControl(c, cs.Stream, cs.Name),
	}
	spans, err := s.breakerSpans(ctx, guards, since)
	if err != nil {
		return err
	}
	m.Pending, m.Rates = m.Pending.WithSpans(spans), m.Rates.WithSpans(spans)
	return s.renderPage(c, p, views.ConsumerLive(m))
}

// accountConsumerShow is another account's consumer page: its state,
// lag trend and config as the last cycle read them, without history,
// breakers or pause, which are jetwatch's own account's.
func (s *Server) accountConsumerShow(c echo.Context, acc *store.Account, stream, name string) error {
	if _, err := accountStream(acc, stream); err != nil {
		return err
	}
	for _, cs := range accountConsumers(acc, stream) {
		if cs.Name != name {
			continue
		}
		p := s.page(c, "Consumer "+stream+" / "+name+" · account "+acc.Name, true)
		row := s.consumerRows([]store.Consumer{cs}, nil, p.Now)[0]
		row.Account = acc.Name
		return s.renderPage(c, p, views.ConsumerLive(views.ConsumerPage{
			Page: p, Consumer: row, Account: acc.Name, OwnAccount: s.ownAccount(),
		}))
	}
	return notFoundError{"unknown consumer " + name + " on stream " + stream + " in account " + acc.Name}
}

func rest[T any](s []T) []T {
	if len(s) == 0 {
		return s
	}
	return s[1:]
}

// indentJSON pretty-prints a raw config for the <details> block, or
// returns it as stored when it is not valid JSON or too large or deep to
// indent (a stream's metadata is the user's).
func indentJSON(raw json.RawMessage) string {
	if !json.Valid(raw) {
		return string(raw)
	}
	text, _ := views.PrettyJSON(raw)
	return text
}
