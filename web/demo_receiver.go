package web

import (
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/views"
)

// demoReceiverPath is where the demo's alert webhooks go.
const demoReceiverPath = "/demo/receiver"

// demoReceiverPage answers GET /demo/receiver: the webhooks that arrived.
func (s *Server) demoReceiverPage(c echo.Context) error {
	p := s.page(c, "Demo receiver", true)
	p.Nav = "alerts"
	return s.renderPage(c, p, views.DemoReceiverBody(views.DemoReceiverList{Arrivals: s.cfg.DemoReceiver.Arrivals(), Now: p.Now}))
}

// demoReceiverPost answers POST /demo/receiver: one webhook, recorded.
func (s *Server) demoReceiverPost(c echo.Context) error {
	return c.NoContent(s.cfg.DemoReceiver.Receive(c.Request()))
}
