package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"
)

const (
	csrfCookie = "jetwatch_csrf"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	csrfKey    = "csrf"
)

// csrf protects state-changing requests made by a browser. Forms carry a
// token (field "csrf"), scripts send it in X-CSRF-Token; it must match the
// jetwatch_csrf cookie, which another site can neither read nor send
// (SameSite=Strict, HttpOnly). Requests with an API bearer token carry no
// ambient credential and are exempt. Without authentication (loopback
// only) a JSON API request is accepted too: a cross-site page cannot send
// JSON without a CORS preflight jetwatch never grants.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := ""
		if ck, err := c.Cookie(csrfCookie); err == nil && len(ck.Value) == 64 {
			token = ck.Value
		} else {
			var b [32]byte
			rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
			token = hex.EncodeToString(b[:])
			c.SetCookie(&http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: s.secureCookies(c)})
		}
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
			sent = c.FormValue(csrfField)
		}
		if subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
			if isAPI(c) {
				return echo.NewHTTPError(http.StatusForbidden, "missing or wrong X-CSRF-Token header: scripts must send the page's CSRF token, automation an API token")
			}
			return echo.NewHTTPError(http.StatusForbidden, "this form expired or came from another site: reload the page and try again")
		}
		return next(c)
	}
}

func csrfToken(c echo.Context) string {
	t, _ := c.Get(csrfKey).(string)
	return t
}

// secureCookies says whether cookies must only travel over HTTPS.
func (s *Server) secureCookies(c echo.Context) bool {
	return c.IsTLS() || (s.cfg.Auth != nil && s.cfg.Auth.SecureCookies)
}
