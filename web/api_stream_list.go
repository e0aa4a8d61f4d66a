package web

import (
	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// apiStreamList answers GET /api/v1/streams?own=&account=: every stream's
// latest state, without configs, with the health the overview shows.
// jetwatch's own streams are left out unless own is set, as on the
// overview. account names another account sampled (--all-accounts).
func (s *Server) apiStreamList(c echo.Context) error {
	own, err := ownParam(c)
	if err != nil {
		return err
	}
	acc, err := s.accountParam(c)
	if err != nil {
		return err
	}
	var streams []store.Stream
	account := s.ownAccount()
	if acc != nil {
		streams, account = acc.Streams, acc.Name
	} else if streams, err = s.cfg.Index.Streams(c.Request().Context()); err != nil {
		return err
	}
	now := s.cfg.Now()
	items := make([]apiStream, 0, len(streams))
	for _, st := range streams {
		if own || !st.Own {
			items = append(items, newAPIStream(s.streamRow(st, now), account))
		}
	}
	return apiJSON(c, list[apiStream]{Items: items})
}
