package web

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// render writes a component through a buffer, so a failing render never
// sends half a page.
func (s *Server) render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// page is the layout model every page shares; live is the URL that live
// refresh fetches (the same page with ?fragment=live).
func (s *Server) page(c echo.Context, title, nav string, live bool) views.Page {
	n := s.cfg.NATSState()
	p := views.Page{
		Title: title, Nav: nav, Version: s.cfg.Version,
		CSSURL: s.assets.url("app.css"), JSURL: s.assets.url("app.js"), IconURL: s.assets.url("favicon.svg"),
		RefreshSeconds: max(int(s.cfg.SampleInterval.Seconds()), 1),
		NATS:           views.NATSBanner{Connected: n.Connected, Since: n.Since, LastError: n.LastError, Server: n.Server, ServerName: n.ServerName},
		Now:            s.cfg.Now(),
	}
	if live {
		q := c.Request().URL.Query()
		q.Set("fragment", "live")
		p.LiveURL = c.Request().URL.Path + "?" + q.Encode()
	}
	return p
}

// wantsFragment says whether the request asks only for the live region.
func wantsFragment(c echo.Context) bool { return c.QueryParam("fragment") == "live" }

// notFoundError is an error whose message is safe to show.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string { return e.msg }

// handleError is the one place errors become responses: JSON under /api,
// a friendly page elsewhere. Internal errors are logged once, and their
// text never reaches the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error, see jetwatch logs"
	var nf notFoundError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &nf):
		status, msg = http.StatusNotFound, nf.msg
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		} else if status < 500 {
			msg = http.StatusText(status)
		}
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	}
	if status >= 500 {
		s.logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if isAPI(c) {
		c.JSON(status, map[string]string{"error": msg}) //nolint:errcheck // nothing left to do
		return
	}
	p := s.page(c, http.StatusText(status), "", false)
	var comp templ.Component
	if status == http.StatusNotFound {
		comp = views.NotFoundPage(views.NotFound{Page: p, Message: msg})
	} else {
		comp = views.ErrorView(views.ErrorPage{Page: p, Status: status, Message: msg})
	}
	if rerr := s.render(c, status, comp); rerr != nil {
		s.logger.Error("rendering the error page failed", "err", rerr)
		c.String(status, msg) //nolint:errcheck // nothing left to do
	}
}

func isAPI(c echo.Context) bool {
	p := c.Request().URL.Path
	return len(p) >= 8 && p[:8] == "/api/v1/"
}
