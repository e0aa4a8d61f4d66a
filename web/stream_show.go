package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// streamShow answers GET /streams/:stream?window=1h|24h|7d: the stream's
// config, state, limits, replicas, history and consumers. With
// ?account= naming another account, that account's stream as the last
// cycle read it, read-only.
func (s *Server) streamShow(c echo.Context) error {
	ctx := c.Request().Context()
	name, err := pathParam(c, "stream")
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
		return s.accountStreamShow(c, acc, name)
	}
	st, err := s.cfg.Index.Stream(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return streamNotFound(name)
	}
	if err != nil {
		return err
	}
	consumers, err := s.cfg.Index.Consumers(ctx, name)
	if err != nil {
		return err
	}
	p := s.page(c, "Stream "+name, true)
	since := p.Now.Add(-d)
	hist, err := s.cfg.Index.StreamHistory(ctx, name, since, p.Now, chartPoints)
	if err != nil {
		return err
	}
	sparks, err := s.cfg.Index.PendingSparklines(ctx, name, since, p.Now, sparkPoints)
	if err != nil {
		return err
	}
	times := make([]time.Time, len(hist))
	msgs, bytes := make([]float64, len(hist)), make([]float64, len(hist))
	for i, h := range hist {
		times[i], msgs[i], bytes[i] = h.At, float64(h.Messages), float64(h.Bytes)
	}
	m := views.StreamPage{
		Page:      p,
		Stream:    s.streamRow(st, p.Now),
		Window:    window,
		Windows:   windows,
		Messages:  views.NewLineChart("Messages", "chart-messages", since, p.Now, times, views.CountAxis, views.Series{Name: "messages", Class: "s1", Values: msgs}),
		Bytes:     views.NewLineChart("Bytes", "chart-bytes", since, p.Now, times, views.BytesAxis, views.Series{Name: "bytes", Class: "s2", Values: bytes}),
		Consumers: s.consumerRows(consumers, sparks, p.Now),
		ConfigRaw: indentJSON(st.Config),
	}
	return s.renderPage(c, p, views.StreamLive(m))
}

// streamNotFound is the 404 for a stream the index does not hold.
func streamNotFound(name string) error {
	return notFoundError{"jetwatch has not seen stream " + name + "; it may have been deleted, or not been sampled yet."}
}

// accountStreamShow is another account's stream page: what the last cycle
// read (state, limits, replicas, consumers and their lag), without
// history or actions, which are jetwatch's own account's.
func (s *Server) accountStreamShow(c echo.Context, acc *store.Account, name string) error {
	st, err := accountStream(acc, name)
	if err != nil {
		return err
	}
	p := s.page(c, "Stream "+name+" · account "+acc.Name, true)
	row := s.streamRow(st, p.Now)
	row.Account = acc.Name
	consumers := s.consumerRows(accountConsumers(acc, name), nil, p.Now)
	for i := range consumers {
		consumers[i].Account = acc.Name
	}
	return s.renderPage(c, p, views.StreamLive(views.StreamPage{
		Page: p, Stream: row, Consumers: consumers, Account: acc.Name, OwnAccount: s.ownAccount(),
	}))
}
