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
	csrfKey    = "csrf"
)

// csrf protects state-changing requests. Forms carry a token that must
// match the jetwatch_csrf cookie (SameSite=Strict, HttpOnly): another site
// can neither read nor send it. API requests must be JSON, which a
// cross-site form cannot send without a CORS preflight jetwatch never
// grants.
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
				SameSite: http.SameSiteStrictMode, Secure: c.IsTLS()})
		}
		c.Set(csrfKey, token)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if isAPI(c) {
			mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
			if mt != echo.MIMEApplicationJSON {
				return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send JSON (Content-Type: application/json)")
			}
			return next(c)
		}
		if subtle.ConstantTimeCompare([]byte(c.FormValue(csrfField)), []byte(token)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "this form expired or came from another site: reload the page and try again")
		}
		return next(c)
	}
}

func csrfToken(c echo.Context) string {
	t, _ := c.Get(csrfKey).(string)
	return t
}

// actor names who acted. Until operators sign in, it is the client
// address.
func actor(c echo.Context) string { return "anonymous@" + c.RealIP() }
