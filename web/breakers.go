package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// breakerHistoryLimit bounds the transitions one breaker's lane reads: a
// breaker probing every 15 s for 8 hours.
const breakerHistoryLimit = 2000

// breakerList answers GET /breakers: every service's breakers, open first,
// their states over the window (?window=, 1h by default) and the latest
// transitions.
func (s *Server) breakerList(c echo.Context) error {
	ctx := c.Request().Context()
	window, d, err := pageWindow(c.QueryParam("window"))
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	p := s.page(c, "Breakers", true)
	p.Nav = "breakers"
	breakers, err := s.cfg.Index.Breakers(ctx, p.Now)
	if err != nil {
		return err
	}
	from := p.Now.Add(-d)
	histories := make([]views.BreakerHistory, 0, len(breakers))
	for _, b := range breakers {
		trs, err := s.cfg.Index.BreakerHistory(ctx, b.Service, b.Breaker, from, breakerHistoryLimit)
		if err != nil {
			return err
		}
		truncated := len(trs) == breakerHistoryLimit && trs[0].At.After(from)
		histories = append(histories, views.BreakerHistory{Breaker: b, Transitions: trs, Truncated: truncated})
	}
	transitions, err := s.cfg.Index.BreakerTransitions(ctx, "", "", 50)
	if err != nil {
		return err
	}
	return s.renderPage(c, p, views.BreakersBody(views.BreakerList{Breakers: breakers, Transitions: transitions,
		Timeline: views.NewBreakerTimeline(from, p.Now, histories), Window: window, Windows: windows, Now: p.Now}))
}

// apiBreakerList answers GET /api/v1/breakers.
func (s *Server) apiBreakerList(c echo.Context) error {
	breakers, err := s.cfg.Index.Breakers(c.Request().Context(), s.cfg.Now())
	if err != nil {
		return err
	}
	return apiJSON(c, list[store.Breaker]{Items: nonNil(breakers)})
}
