package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/views"
)

// signInForm answers GET /login.
func (s *Server) signInForm(c echo.Context) error {
	next := auth.LocalRedirect(c.QueryParam("next"))
	if principal(c).Role != auth.NoRole && s.cfg.Auth != nil {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return s.renderSignIn(c, http.StatusOK, views.SignIn{Next: next})
}

func (s *Server) renderSignIn(c echo.Context, status int, m views.SignIn) error {
	m.CSSURL, m.IconURL = s.assets.url("app.css"), s.assets.url("favicon.svg")
	m.CSRF = csrfToken(c)
	m.Enabled = s.cfg.Auth != nil && s.cfg.Auth.Users != nil
	return s.render(c, status, views.SignInPage(m))
}

// signIn answers POST /login: a session cookie for the right password,
// the form again for a wrong one, and a wait after too many failures.
func (s *Server) signIn(c echo.Context) error {
	a := s.cfg.Auth
	if a == nil || a.Users == nil {
		return echo.NewHTTPError(http.StatusNotFound, "password sign-in is not configured (jetwatch serve --users FILE)")
	}
	// Only the POST body: a password in the query string would land in
	// proxy and access logs.
	form, err := bodyForm(c)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(form.Get("user"))
	m := views.SignIn{Next: auth.LocalRedirect(form.Get("next")), User: name}
	now, addr := s.cfg.Now(), c.RealIP()
	if until, locked := a.Lockout.Blocked(name, addr, now); locked {
		s.logger.Warn("sign-in refused: locked out after failed attempts", "user", name, "addr", addr, "until", until)
		s.audit(c, audit.Entry{Action: "login", Target: name, Result: "locked out", Failed: true})
		m.Problem = "Too many failed sign-ins for this user or from this address. Try again after " +
			until.UTC().Format("15:04 UTC") + "."
		c.Response().Header().Set("Retry-After", retryAfter(until.Sub(now)))
		return s.renderSignIn(c, http.StatusTooManyRequests, m)
	}
	u, err := a.Users.Authenticate(name, form.Get("password"))
	if err != nil {
		if !errors.Is(err, auth.ErrBadCredentials) {
			return err
		}
		a.Lockout.Failed(name, addr, now)
		s.logger.Warn("sign-in failed", "user", name, "addr", addr)
		s.audit(c, audit.Entry{Action: "login", Target: name, Result: "wrong user name or password", Failed: true})
		m.Problem = "Wrong user name or password."
		return s.renderSignIn(c, http.StatusUnauthorized, m)
	}
	a.Lockout.Succeeded(name)
	_, value := a.Sessions.New(u.Name, now)
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(c), MaxAge: int(a.Sessions.TTL().Seconds())})
	c.Set(principalKey, auth.Principal{Name: u.Name, Role: u.Role, Method: "password"})
	s.logger.Info("signed in", "user", u.Name, "role", u.Role.String(), "addr", addr)
	s.audit(c, audit.Entry{Action: "login", Target: u.Name, Result: "signed in as " + u.Role.String()})
	return c.Redirect(http.StatusSeeOther, m.Next)
}

// signOut answers POST /logout.
func (s *Server) signOut(c echo.Context) error {
	if sess, ok := c.Get(sessionKey).(auth.Session); ok && s.cfg.Auth != nil {
		// The session has ended here whatever the error; the sign-out is
		// sent to the other replicas as soon as NATS takes it.
		if err := s.cfg.Auth.Sessions.Revoke(c.Request().Context(), sess, s.cfg.Now()); err != nil {
			s.logger.Warn("signed out on this replica; other jetwatch replicas may accept the session until NATS takes the sign-out",
				"user", sess.User, "err", err)
		}
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(c), MaxAge: -1})
	return c.Redirect(http.StatusSeeOther, "/login")
}

func retryAfter(d time.Duration) string { return strconv.Itoa(int(d.Seconds()) + 1) }
