package web

import (
	"encoding/hex"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/views"
)

func (s *Server) tokenStore() TokenStore {
	if s.cfg.Auth == nil {
		return nil
	}
	return s.cfg.Auth.Tokens
}

// tokenList answers GET /admin/tokens.
func (s *Server) tokenList(c echo.Context) error {
	return s.renderTokens(c, http.StatusOK, views.TokenList{})
}

func (s *Server) renderTokens(c echo.Context, status int, m views.TokenList) error {
	m.CSRF = csrfToken(c)
	if ts := s.tokenStore(); ts == nil {
		m.Unavailable = "API tokens need sign-in to be configured and a connection to NATS (they are kept in the jetwatch_tokens KV bucket)."
	} else {
		list, err := ts.List(c.Request().Context())
		if err != nil {
			return err
		}
		m.Tokens = list
	}
	p := s.page(c, "API tokens", false)
	p.Nav = "tokens"
	return s.render(c, status, views.Document(p, views.TokenListView(m)))
}

// tokenCreate answers POST /admin/tokens. The new token's secret is shown
// on this answer only, so it is rendered rather than redirected.
func (s *Server) tokenCreate(c echo.Context) error {
	ts := s.tokenStore()
	if ts == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "API tokens are not available: configure sign-in and NATS")
	}
	role, err := auth.ParseRole(c.FormValue("role"))
	if err != nil {
		setAuditResult(c, err.Error())
		return s.renderTokens(c, http.StatusUnprocessableEntity, views.TokenList{Problem: err.Error()})
	}
	tok, bearer, err := ts.Create(c.Request().Context(), c.FormValue("name"), role, actor(c), s.cfg.Now())
	if err != nil {
		setAuditResult(c, err.Error())
		return s.renderTokens(c, http.StatusUnprocessableEntity, views.TokenList{Problem: err.Error()})
	}
	setAuditResult(c, "created token "+tok.ID+" ("+tok.Name+", "+tok.Role.String()+")")
	return s.renderTokens(c, http.StatusCreated, views.TokenList{Created: &tok, CreatedText: bearer})
}

// tokenRevoke answers POST /admin/tokens/:id/revoke.
func (s *Server) tokenRevoke(c echo.Context) error {
	ts := s.tokenStore()
	if ts == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "API tokens are not available: configure sign-in and NATS")
	}
	if !isTokenID(c.Param("id")) {
		// Never a key sent to NATS: a long one would cost the connection.
		return notFoundError{"no API token " + shortQuote(c.Param("id"))}
	}
	if err := ts.Revoke(c.Request().Context(), c.Param("id")); err != nil {
		setAuditResult(c, err.Error())
		return s.renderTokens(c, http.StatusUnprocessableEntity, views.TokenList{Problem: err.Error()})
	}
	setAuditResult(c, "revoked token "+c.Param("id"))
	return c.Redirect(http.StatusSeeOther, "/admin/tokens")
}

// isTokenID says whether id has the shape of a token id: 16 hex digits.
func isTokenID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
