package web

import (
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// breakerList answers GET /breakers: every service's breakers, open first,
// and the latest transitions.
func (s *Server) breakerList(c echo.Context) error {
	ctx := c.Request().Context()
	p := s.page(c, "Breakers", true)
	p.Nav = "breakers"
	breakers, err := s.cfg.Index.Breakers(ctx, p.Now)
	if err != nil {
		return err
	}
	transitions, err := s.cfg.Index.BreakerTransitions(ctx, "", "", 50)
	if err != nil {
		return err
	}
	return s.renderPage(c, p, views.BreakersBody(views.BreakerList{Breakers: breakers, Transitions: transitions, Now: p.Now}))
}

// apiBreakerList answers GET /api/v1/breakers.
func (s *Server) apiBreakerList(c echo.Context) error {
	breakers, err := s.cfg.Index.Breakers(c.Request().Context(), s.cfg.Now())
	if err != nil {
		return err
	}
	return apiJSON(c, list[store.Breaker]{Items: nonNil(breakers)})
}
