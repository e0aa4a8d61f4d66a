package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

func (s *Server) consumerShow(c echo.Context) error {
	ctx := c.Request().Context()
	stream, name := c.Param("stream"), c.Param("consumer")
	window := c.QueryParam("window")
	if window == "" {
		window = "1h"
	}
	d, err := parseWindow(window)
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	cs, err := s.cfg.Index.Consumer(ctx, stream, name)
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"jetwatch has not seen consumer " + name + " on stream " + stream + ": it may have been deleted, or not been sampled yet."}
	}
	if err != nil {
		return err
	}
	p := s.page(c, "Consumer "+stream+" / "+name, "overview", true)
	since := p.Now.Add(-d)
	hist, err := s.cfg.Index.ConsumerHistory(ctx, stream, name, since, p.Now, chartPoints)
	if err != nil {
		return err
	}
	points := withRates(hist)
	times := make([]time.Time, len(points))
	pending, ackPending, redelivered := make([]float64, len(points)), make([]float64, len(points)), make([]float64, len(points))
	delivered, acked := make([]float64, len(points)), make([]float64, len(points))
	for i, h := range points {
		times[i] = h.At
		pending[i], ackPending[i], redelivered[i] = float64(h.NumPending), float64(h.NumAckPending), float64(h.NumRedelivered)
		delivered[i], acked[i] = h.DeliveredPerSec, h.AckedPerSec
	}
	// The first point has no predecessor to derive a rate from.
	rateTimes := rest(times)
	m := views.ConsumerPage{
		Page: p, Consumer: cs, Stale: s.stale(cs.SampledAt, p.Now), Window: window, Windows: windows,
		Pending: views.NewLineChart("Pending, ack pending and redelivered", "chart-pending", since, p.Now, times, views.CountAxis,
			views.Series{Name: "pending", Class: "s1", Values: pending},
			views.Series{Name: "ack pending", Class: "s2", Values: ackPending},
			views.Series{Name: "redelivered", Class: "s3", Values: redelivered}),
		Rates: views.NewLineChart("Delivered and acked per second", "chart-rates", since, p.Now, rateTimes, views.CountAxis,
			views.Series{Name: "delivered/s", Class: "s1", Values: rest(delivered)},
			views.Series{Name: "acked/s", Class: "s2", Values: rest(acked)}),
		ConfigRaw: indentJSON(cs.Config),
	}
	if wantsFragment(c) {
		return s.render(c, http.StatusOK, views.ConsumerLive(m))
	}
	return s.render(c, http.StatusOK, views.ConsumerView(m))
}

// historyPoint is a consumer history point with rates derived from the
// sequence deltas to the previous point.
type historyPoint struct {
	store.ConsumerPoint
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	AckedPerSec     float64 `json:"acked_per_sec"`
}

func withRates(hist []store.ConsumerPoint) []historyPoint {
	out := make([]historyPoint, len(hist))
	for i, h := range hist {
		out[i].ConsumerPoint = h
		if i == 0 {
			continue
		}
		prev := hist[i-1]
		dt := h.At.Sub(prev.At).Seconds()
		if dt <= 0 {
			continue
		}
		if h.DeliveredSeq >= prev.DeliveredSeq {
			out[i].DeliveredPerSec = float64(h.DeliveredSeq-prev.DeliveredSeq) / dt
		}
		if h.AckFloorSeq >= prev.AckFloorSeq {
			out[i].AckedPerSec = float64(h.AckFloorSeq-prev.AckFloorSeq) / dt
		}
	}
	return out
}

func rest[T any](s []T) []T {
	if len(s) == 0 {
		return s
	}
	return s[1:]
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}
