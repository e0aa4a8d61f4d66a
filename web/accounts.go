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
	return echo.NewHTTPError(http.StatusNotFound, "no account "+shortQuote(name)+" was read in the last cycle: see GET /api/v1/accounts for the accounts jetwatch reads (--all-accounts)")
}

// accountParam reads ?account= of the stream and consumer API: nil for
// jetwatch's own account (no parameter, or its name), else the other
// account as the last cycle read it, or a 404 saying which accounts there
// are.
func (s *Server) accountParam(c echo.Context) (*store.Account, error) {
	name := c.QueryParam("account")
	st := s.cfg.SamplerState()
	if name == "" || name == st.Account {
		return nil, nil
	}
	for i := range st.Accounts {
		if a := &st.Accounts[i]; a.Name == name || a.ID == name {
			if a.Unread != nil {
				return nil, unavailableError{"account " + name + " could not be read in the last cycle: " + a.Unread.Why + " (" + a.Unread.Detail + "); it is asked again every cycle"}
			}
			return a, nil
		}
	}
	return nil, notFoundError{"no account " + shortQuote(name) + " was read in the last cycle: GET /api/v1/accounts lists those jetwatch reads (--all-accounts)"}
}

// ownAccount fills in jetwatch's own account's name, as far as known.
func (s *Server) ownAccount() string { return s.cfg.SamplerState().Account }

// accountStream is one stream of another account, or a 404.
func accountStream(a *store.Account, name string) (store.Stream, error) {
	for _, st := range a.Streams {
		if st.Name == name {
			return st, nil
		}
	}
	return store.Stream{}, notFoundError{"unknown stream " + name + " in account " + a.Name}
}

// accountConsumers are the consumers of one stream of another account.
func accountConsumers(a *store.Account, stream string) []store.Consumer {
	var out []store.Consumer
	for _, c := range a.Consumers {
		if c.Stream == stream {
			out = append(out, c)
		}
	}
	return out
}
