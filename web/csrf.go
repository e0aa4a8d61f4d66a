package web

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/views"
)

const (
	csrfCookie = "jetwatch_csrf"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	csrfKey    = "csrf"
)

// signInPath is the sign-in page: its form is posted before there is a
// session, so it always carries the pre-session token.
const signInPath = "/login"

// csrf protects state-changing requests made by a browser. Forms carry a
// token (field "csrf", in the POST body), scripts send it in
// X-CSRF-Token; a token in the query string is never read, since URLs end
// up in logs, histories and Referer headers. Which token is right is
// csrfTokenFor's decision. Requests with an API bearer token carry no
// ambient credential and are exempt. Without authentication (loopback
// only) a JSON API request is accepted too: a cross-site page cannot send
// JSON without a CORS preflight jetwatch never grants.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		nonce := ""
		if ck, err := c.Cookie(csrfCookie); err == nil && validNonce(ck.Value) {
			nonce = ck.Value
		} else {
			var b [32]byte
			rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
			nonce = hex.EncodeToString(b[:])
			c.SetCookie(&http.Cookie{Name: csrfCookie, Value: nonce, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: s.secureCookies(c)})
		}
		token := s.csrfTokenFor(c, nonce)
		c.Set(csrfKey, token)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if c.Path() == demoReceiverPath && s.cfg.DemoReceiver != nil {
			// Webhooks carry an HMAC signature instead, which the
			// demo receiver verifies.
			return next(c)
		}
		if isAPI(c) {
			mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
			if mt != echo.MIMEApplicationJSON {
				return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send JSON (Content-Type: application/json)")
			}
			if principal(c).Method == "token" || s.cfg.Auth == nil {
				return next(c)
			}
		}
		sent := c.Request().Header.Get(csrfHeader)
		if sent == "" && !isAPI(c) {
			form, err := bodyForm(c)
			if err != nil {
				return err
			}
			sent = form.Get(csrfField)
		}
		if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
			s.auditCSRFRefusal(c)
			if isAPI(c) {
				return echo.NewHTTPError(http.StatusForbidden, "missing or wrong X-CSRF-Token header: scripts must send the page's CSRF token, automation an API token")
			}
			return echo.NewHTTPError(http.StatusForbidden, "this form expired or came from another site: reload the page and try again")
		}
		return next(c)
	}
}

// csrfTokenFor is the token this request's forms carry and its posts must
// send back. With password sign-in it is bound to the session (see
// auth.Sessions.CSRFToken), so a token from another operator's page, from
// before sign-in or from a signed-out session is refused; the sign-in
// form's own token is bound to the browser's jetwatch_csrf cookie.
// Without sessions (a trusted proxy, or no sign-in on loopback) the
// token is that cookie's value, checked by double submit: another site
// can neither read the cookie (HttpOnly) nor make the browser send it
// (SameSite=Strict).
func (s *Server) csrfTokenFor(c echo.Context, nonce string) string {
	a := s.cfg.Auth
	if a == nil || a.Sessions == nil {
		return nonce
	}
	if sess, ok := c.Get(sessionKey).(auth.Session); ok && c.Path() != signInPath {
		return a.Sessions.CSRFToken(sess)
	}
	return a.Sessions.PreSessionCSRFToken(nonce)
}

// validNonce says whether a jetwatch_csrf cookie is one jetwatch could
// have set: 64 hex digits.
func validNonce(v string) bool {
	if len(v) != 64 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// bodyForm is the form in the request body, without the query string's
// parameters (which c.FormValue would also read).
func bodyForm(c echo.Context) (url.Values, error) {
	if _, err := c.FormParams(); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "the form is too large")
		}
		return nil, echo.NewHTTPError(http.StatusBadRequest, "the form in the request body could not be read: send it as application/x-www-form-urlencoded or multipart/form-data")
	}
	return c.Request().PostForm, nil
}

func csrfToken(c echo.Context) string {
	t, _ := c.Get(csrfKey).(string)
	return t
}

// secureCookies says whether cookies must only travel over HTTPS.
func (s *Server) secureCookies(c echo.Context) bool {
	return c.IsTLS() || (s.cfg.Auth != nil && s.cfg.Auth.SecureCookies)
}

// csrfAuditEvery bounds the audit entries of CSRF refusals: one an actor
// per this, so a page that keeps posting does not flood the audit log.
const csrfAuditEvery = time.Minute

// auditCSRFRefusal records a state-changing request refused for its CSRF
// token from someone jetwatch knows (signed in, or anyone when nobody
// signs in): a forgery tried through their browser, or a form left open
// across a sign-out. It is audited as the action the route does (or
// "csrf"), with where the request said it came from (the origin only: a
// referrer's path and query may hold what the log must not).
func (s *Server) auditCSRFRefusal(c echo.Context) {
	p := principal(c)
	if p.Role == auth.NoRole {
		return
	}
	now := s.cfg.Now()
	s.csrfMu.Lock()
	if last, ok := s.csrfRefused[p.Actor()]; ok && now.Sub(last) < csrfAuditEvery {
		s.csrfMu.Unlock()
		return
	}
	if s.csrfRefused == nil || len(s.csrfRefused) >= 1000 {
		s.csrfRefused = map[string]time.Time{}
	}
	s.csrfRefused[p.Actor()] = now
	s.csrfMu.Unlock()
	from := "not sent"
	if o := c.Request().Header.Get("Origin"); o != "" {
		from = o
	} else if u, err := url.Parse(c.Request().Header.Get("Referer")); err == nil && u.Host != "" {
		from = u.Scheme + "://" + u.Host
	}
	action := cmp.Or(s.actions[c.Request().Method+" "+c.Path()], "csrf")
	s.audit(c, audit.Entry{Action: action, Target: c.Request().Method + " " + c.Request().URL.Path,
		Result: "refused: missing or wrong CSRF token (origin " + views.Shorten(from, 120) + ")", Failed: true})
}
