package web

import (
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// streamList is GET /api/v1/streams's answer.
type streamList struct {
	Items []apiStream `json:"items"`
	// Unread says which accounts' streams are missing from an
	// every-account list, and why: they could not be read this cycle.
	Unread []string `json:"unread_accounts,omitempty"`
}

// apiStreamList answers GET /api/v1/streams?own=&account=: every stream's
// latest state, without configs, with the health the overview shows.
// jetwatch's own streams are left out unless own is set, as on the
// overview. account names another account sampled (--all-accounts), or
// is * for every account jetwatch reads; each item names its account.
func (s *Server) apiStreamList(c echo.Context) error {
	own, err := ownParam(c)
	if err != nil {
		return err
	}
	st := s.cfg.SamplerState()
	every := c.QueryParam("account") == views.EveryAccount
	var acc *store.Account
	if !every {
		if acc, err = s.accountParam(c); err != nil {
			return err
		}
	}
	now := s.cfg.Now()
	var out streamList
	add := func(streams []store.Stream, account string) {
		for _, st := range streams {
			if own || !st.Own {
				out.Items = append(out.Items, newAPIStream(s.streamRow(st, now), account))
			}
		}
	}
	if acc != nil {
		add(acc.Streams, acc.Name)
		out.Items = nonNil(out.Items)
		return apiJSON(c, out)
	}
	streams, err := s.cfg.Index.Streams(c.Request().Context())
	if err != nil {
		return err
	}
	add(streams, st.Account)
	if every && st.AllAccounts {
		for _, a := range st.Accounts {
			if a.Unread != nil {
				out.Unread = append(out.Unread, a.Name+": "+a.Unread.Why+" ("+a.Unread.Detail+")")
				continue
			}
			add(a.Streams, a.Name)
		}
	}
	out.Items = nonNil(out.Items)
	return apiJSON(c, out)
}
