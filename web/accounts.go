package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// accountList answers GET /accounts: every other account's streams and
// consumers, as the last cycle read them through the system account.
func (s *Server) accountList(c echo.Context) error {
	st := s.cfg.SamplerState()
	p := s.page(c, "Accounts", true)
	p.AllAccounts = true // the page itself says how to turn it on
	p.Nav = "accounts"
	return s.renderPage(c, p, views.AccountsBody(views.AccountList{
		Enabled: st.AllAccounts, Accounts: st.Accounts, Note: st.AccountsNote,
	}))
}

// accountsAnswer is GET /api/v1/accounts's answer.
type accountsAnswer struct {
	// Enabled says whether every account is sampled (--all-accounts).
	Enabled bool            `json:"enabled"`
	Note    string          `json:"note,omitempty"`
	Items   []store.Account `json:"items"`
}

// apiAccountList answers GET /api/v1/accounts.
func (s *Server) apiAccountList(c echo.Context) error {
	st := s.cfg.SamplerState()
	return apiJSON(c, accountsAnswer{Enabled: st.AllAccounts, Note: st.AccountsNote, Items: nonNil(st.Accounts)})
}

// apiAccountShow answers GET /api/v1/accounts/:account, by name or ID.
func (s *Server) apiAccountShow(c echo.Context) error {
	name := c.Param("account")
	for _, a := range s.cfg.SamplerState().Accounts {
		if a.Name == name || a.ID == name {
			return apiJSON(c, a)
		}
	}
	return echo.NewHTTPError(http.StatusNotFound, "no account "+name+" was read in the last cycle: see GET /api/v1/accounts for the accounts jetwatch reads (--all-accounts)")
}
