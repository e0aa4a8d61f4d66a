package web

import (
	"github.com/labstack/echo/v4"
)

// apiStreamList answers GET /api/v1/streams?own=: every stream's latest
// state, without configs, with the health the overview shows. jetwatch's
// own streams are left out unless own is set, as on the overview.
func (s *Server) apiStreamList(c echo.Context) error {
	own, err := ownParam(c)
	if err != nil {
		return err
	}
	streams, err := s.cfg.Index.Streams(c.Request().Context())
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	items := make([]apiStream, 0, len(streams))
	for _, st := range streams {
		if own || !st.Own {
			items = append(items, newAPIStream(s.streamRow(st, now)))
		}
	}
	return apiJSON(c, list[apiStream]{Items: items})
}
