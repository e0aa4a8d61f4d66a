package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
)

// TokenStore checks and manages API bearer tokens. *auth.Tokens implements it.
type TokenStore interface {
	Authenticate(ctx context.Context, bearer string) (auth.Token, error)
	Create(ctx context.Context, name string, role auth.Role, by string, now time.Time) (auth.Token, string, error)
	Revoke(ctx context.Context, id string) error
	List(ctx context.Context) ([]auth.Token, error)
}

// AuthConfig says how operators prove who they are. Any combination of
// the three ways may be configured.
type AuthConfig struct {
	// Users enables the sign-in page; Sessions is then required.
	Users    *auth.Users
	Sessions *auth.Sessions
	// Lockout limits failed sign-ins. Defaults to 5 per 15 minutes per
	// user name and per address.
	Lockout *auth.Lockout
	// Proxy takes the operator from a trusted proxy's headers.
	Proxy *auth.Proxy
	// Tokens checks API bearer tokens; without it bearer tokens are refused.
	Tokens TokenStore
	// SecureCookies marks cookies Secure even when jetwatch itself does not
	// terminate TLS (behind a TLS proxy).
	SecureCookies bool
}

const (
	principalKey  = "principal"
	sessionCookie = "jetwatch_session"
	sessionKey    = "session"
)

// authenticate decides who is asking, from (in this order) a bearer
// token, a trusted proxy's headers or a session cookie. It only
// identifies: the route's guard decides what the principal may do.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a := s.cfg.Auth
		if a == nil {
			c.Set(principalKey, auth.Principal{Name: "anonymous@" + c.RealIP(), Role: auth.Admin, Method: "none"})
			return next(c)
		}
		r := c.Request()
		if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
			bearer, ok := strings.CutPrefix(h, "Bearer ")
			var tok auth.Token
			err := errors.New("only Bearer API tokens are accepted (create one with jetwatch token create)")
			if ok && a.Tokens != nil {
				tok, err = a.Tokens.Authenticate(r.Context(), strings.TrimSpace(bearer))
			}
			if err != nil && s.isPublic(c) {
				// A scraper or probe sending some other system's token
				// still gets /metrics and /healthz.
				c.Set(principalKey, auth.Principal{Method: "anonymous"})
				return next(c)
			}
			if err != nil {
				s.logger.Warn("API token refused", "addr", c.RealIP(), "path", r.URL.Path, "err", err)
				return echo.NewHTTPError(http.StatusUnauthorized, err.Error())
			}
			c.Set(principalKey, auth.Principal{Name: tok.Name, Role: tok.Role, Method: "token"})
			if r.Method == http.MethodGet {
				s.auditTokenUse(c, tok.Name)
			}
			return next(c)
		}
		if a.Proxy.Enabled() {
			p, ok, err := a.Proxy.Identify(r.RemoteAddr, r.Header)
			if err != nil {
				return echo.NewHTTPError(http.StatusForbidden, err.Error())
			}
			if ok {
				c.Set(principalKey, p)
				return next(c)
			}
			if r.Header.Get(a.Proxy.UserHeader) != "" {
				s.logger.Warn("ignored a proxy user header from an address that is not a trusted proxy",
					"addr", r.RemoteAddr, "header", a.Proxy.UserHeader)
			}
		}
		if a.Users != nil {
			if ck, err := c.Cookie(sessionCookie); err == nil {
				if sess, err := a.Sessions.Check(ck.Value, s.cfg.Now()); err == nil {
					if u, ok := a.Users.Lookup(sess.User); ok {
						c.Set(sessionKey, sess)
						c.Set(principalKey, auth.Principal{Name: u.Name, Role: u.Role, Method: "password"})
						return next(c)
					}
				}
			}
		}
		c.Set(principalKey, auth.Principal{Method: "anonymous"})
		return next(c)
	}
}

// isPublic says whether the matched route is open to anyone. Middleware
// added with Use runs after routing, so the route is known.
func (s *Server) isPublic(c echo.Context) bool {
	need, ok := s.needs[c.Request().Method+" "+c.Path()]
	return ok && need == public
}

// principal is who is asking; set by authenticate for every request.
func principal(c echo.Context) auth.Principal {
	p, _ := c.Get(principalKey).(auth.Principal)
	return p
}

// actor names who acted, in the audit log and on dead-letter actions.
func actor(c echo.Context) string { return principal(c).Actor() }

// routeAdder is an Echo or a route group.
type routeAdder interface {
	Add(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
}

// public is the "role" of routes anyone may call: sign-in, probes,
// metrics and assets.
const public = auth.NoRole

// handle registers a route with the role it needs and, when action is
// set, records each call in the audit log. Every route goes through here
// (a test checks it), so none can be added unguarded.
func (s *Server) handle(g routeAdder, method, path string, need auth.Role, action string, h echo.HandlerFunc) {
	if action != "" {
		h = s.audited(action, h)
	}
	r := g.Add(method, path, s.guard(need, action, h))
	s.needs[r.Method+" "+r.Path] = need
	if action != "" {
		s.actions[r.Method+" "+r.Path] = action
	}
}

// guard refuses a request whose principal lacks need: anonymous pages go
// to the sign-in page, anonymous API calls get 401, others 403. A
// signed-in operator refused an audited action is audited too: someone
// tried something their role does not allow.
func (s *Server) guard(need auth.Role, action string, h echo.HandlerFunc) echo.HandlerFunc {
	if need == public {
		return h
	}
	return func(c echo.Context) error {
		p := principal(c)
		if p.Role.Allows(need) {
			return h(c)
		}
		if p.Role == auth.NoRole {
			if isAPI(c) {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="jetwatch"`)
				return echo.NewHTTPError(http.StatusUnauthorized, "sign in, or send an API token: Authorization: Bearer <token>")
			}
			if c.Request().Method == http.MethodGet {
				return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "your session has ended: sign in again")
		}
		msg := "you are signed in as " + p.Role.String() + "; this needs the " + need.String() + " role"
		if action != "" {
			s.audit(c, audit.Entry{Action: action, Target: c.Request().URL.Path, Result: "refused: " + msg, Failed: true})
		}
		return echo.NewHTTPError(http.StatusForbidden, msg)
	}
}
