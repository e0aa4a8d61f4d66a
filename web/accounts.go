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

// accountParam reads ?account= of the stream and consumer pages and API:
// nil for jetwatch's own account (no parameter, or its name), else the
// other account as the last cycle read it, a 404 naming it quoted and
// cut, or a 503 when it could not be read this cycle.
func (s *Server) accountParam(c echo.Context) (*store.Account, error) {
	name := c.QueryParam("account")
	st := s.cfg.SamplerState()
	if name == "" || name == st.Account {
		return nil, nil
	}
	if name == views.EveryAccount {
		return nil, echo.NewHTTPError(http.StatusUnprocessableEntity, "account=* (every account) lists streams only, on the overview and GET /api/v1/streams: a stream or consumer is in one account, so name it (a name or id)")
	}
	a, err := findAccount(c, st, name)
	if err != nil {
		return nil, err
	}
	if a.Unread != nil {
		return nil, unavailableError{"account " + shortQuote(name) + " could not be read in the last cycle: " + a.Unread.Why + " (" + a.Unread.Detail + "); it is asked again every cycle"}
	}
	return a, nil
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

// ownAccountOnly refuses ?account= naming another account on what acts
// or reads messages: those go through jetwatch's own connection, so they
// would reach the stream of the same name in jetwatch's own account.
func (s *Server) ownAccountOnly(c echo.Context, what string) error {
	name := c.QueryParam("account")
	own := s.ownAccount()
	if name == "" || name == own {
		return nil
	}
	return echo.NewHTTPError(http.StatusUnprocessableEntity, "jetwatch does "+what+" in its own account "+shortQuote(own)+
		" only; account "+shortQuote(name)+" is read-only here: use a user of that account (a nats CLI context) to act on it")
}
