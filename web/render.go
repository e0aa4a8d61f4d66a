package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// render writes a component through a buffer, so a failing render never
// sends half a page and its error still reaches the error handler.
func (s *Server) render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(views.WithNow(c.Request().Context(), s.cfg.Now()), &buf); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// renderPage renders body in the page layout, or only the live region when
// live refresh asks for the fragment.
func (s *Server) renderPage(c echo.Context, p views.Page, body templ.Component) error {
	return s.renderPageStatus(c, http.StatusOK, p, body)
}

// renderPageStatus is renderPage answering status.
func (s *Server) renderPageStatus(c echo.Context, status int, p views.Page, body templ.Component) error {
	if wantsFragment(c) {
		return s.render(c, status, views.Fragment(p, body))
	}
	if p.Badges == nil && !p.Anonymous {
		p.Badges = s.navBadges(c.Request().Context(), p.Now)
	}
	return s.render(c, status, views.Document(p, body))
}

// fragmentParam is the query parameter live refresh adds to a page's URL
// to get only its live region.
const fragmentParam = "fragment"

// wantsFragment says whether the request asks only for the live region.
func wantsFragment(c echo.Context) bool { return c.QueryParam(fragmentParam) == "live" }

// page is the layout model every page shares. With live set, the live
// region refreshes from the same URL plus ?fragment=live. Only a
// signed-in principal gets the connection details and the version: the
// error pages are open to anyone.
func (s *Server) page(c echo.Context, title string, live bool) views.Page {
	pr := principal(c)
	p := views.Page{
		Title: title, Nav: "overview",
		CSSURL: s.assets.url("app.css"), JSURL: s.assets.url("app.js"), IconURL: s.assets.url("favicon.svg"),
		RefreshSeconds: max(int(s.cfg.SampleInterval.Seconds()), 1),
		Now:            s.cfg.Now(),
		CSRF:           csrfToken(c),
		CanAct:         pr.Role.Allows(auth.Operator),
		Anonymous:      pr.Role == auth.NoRole,
	}
	if !p.Anonymous {
		n := s.cfg.NATSState()
		p.Version = s.cfg.Version
		p.NATS = views.NATSBanner{Connected: n.Connected, Since: n.Since, LastError: n.LastError, Server: n.Server, ServerName: n.ServerName}
		p.AllAccounts = s.cfg.SamplerState().AllAccounts
	}
	if s.cfg.Auth != nil && !p.Anonymous {
		p.User, p.Role, p.CanSignOut = pr.Name, pr.Role.String(), pr.Method == "password"
	}
	if live {
		q := c.Request().URL.Query()
		q.Set(fragmentParam, "live")
		p.LiveURL = c.Request().URL.EscapedPath() + "?" + q.Encode()
	}
	return p
}

// pathParam is a path parameter, decoded. Echo matches routes on the raw
// path when the request has one (a name with an encoded '/' or '%'), and
// then hands out parameters still escaped.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", echo.NewHTTPError(http.StatusBadRequest, "malformed "+name+" name in the URL")
	}
	return d, nil
}

// notFoundError is a 404 whose message is safe to show: it names only what
// the client asked for.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string { return e.msg }

// unavailableError is a 503 whose message is safe to show: it says what
// did not happen and what to do, and names nothing internal.
type unavailableError struct{ msg string }

func (e unavailableError) Error() string { return e.msg }

// internalMessage is all a client learns about an internal failure.
const internalMessage = "internal error, see jetwatch logs"

// unreadableMessage answers for a dead letter whose message NATS could not
// be asked for.
const unreadableMessage = "a dead letter's headers and payload are read from the DLQ stream, and NATS could not be asked for them: " +
	"check jetwatch's NATS connection (shown at the top of the page) and try again; nothing was lost, and the jetwatch log has the error"

// handleError is the one place errors become answers: JSON under /api/v1/,
// a friendly page elsewhere. Internal errors are logged here, once, and
// their text never reaches the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		c.Set(failureKey, &requestFailure{err: err, afterAnswer: true}) // logRequests logs it, in the request's line
		return
	}
	status, msg := http.StatusInternalServerError, internalMessage
	var nf notFoundError
	var ue unavailableError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &nf):
		status, msg = http.StatusNotFound, nf.msg
	case errors.As(err, &ue):
		status, msg = http.StatusServiceUnavailable, ue.msg
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		} else if status < 500 {
			msg = http.StatusText(status)
		}
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, query.ErrMessageUnreadable):
		status, msg = http.StatusServiceUnavailable, unreadableMessage
	}
	if status >= 500 {
		c.Set(failureKey, &requestFailure{err: err}) // logRequests logs it, in the request's line
		recordError(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if isAPI(c) {
		c.JSON(status, map[string]string{"error": msg}) //nolint:errcheck // the client went away; nothing left to do
		return
	}
	p := s.page(c, http.StatusText(status), false)
	var body templ.Component
	if status == http.StatusNotFound {
		body = views.NotFoundView(views.NotFound{Message: msg})
	} else {
		body = views.ErrorView(views.ErrorPage{Status: status, Message: msg})
	}
	if rerr := s.render(c, status, views.Document(p, body)); rerr != nil {
		s.logger.ErrorContext(c.Request().Context(), "rendering the error page failed", "err", rerr)
		c.String(status, msg) //nolint:errcheck // the client went away; nothing left to do
	}
}

func isAPI(c echo.Context) bool { return strings.HasPrefix(c.Request().URL.Path, "/api/v1/") }
