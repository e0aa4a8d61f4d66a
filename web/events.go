package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// maxKindLen bounds the kind filter: kinds are short words.
const maxKindLen = 64

func eventFilter(c echo.Context) (store.EventFilter, error) {
	f := store.EventFilter{Severity: c.QueryParam("severity"), Limit: 100}
	var err error
	for _, p := range []struct {
		dst   *string
		name  string
		limit int
	}{{&f.Stream, "stream", natsname.MaxNameLen}, {&f.Consumer, "consumer", natsname.MaxNameLen}, {&f.Kind, "kind", maxKindLen}} {
		if *p.dst, err = textParam(c, p.name, p.limit); err != nil {
			return f, err
		}
	}
	switch f.Severity {
	case "", store.SeverityInfo, store.SeverityWarning, store.SeverityCritical:
	default:
		return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "severity: use info, warning or critical")
	}
	if f.Before, err = beforeParam(c, "an event id"); err != nil {
		return f, err
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "limit: use 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

// eventList answers GET /events: the advisory timeline. Events about
// jetwatch's own streams and consumers are left out unless ?own=1.
func (s *Server) eventList(c echo.Context) error {
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	own, err := ownParam(c)
	if err != nil {
		return err
	}
	f.HideOwn = !own
	events, err := s.cfg.Index.Events(c.Request().Context(), f)
	if err != nil {
		return err
	}
	p := s.page(c, "Events", true)
	p.Nav = "events"
	m := views.EventList{Filter: f, Events: events, ShowOwn: own, Page: p}
	if len(events) == f.Limit {
		m.Next = views.EventsURL(f, own, events[len(events)-1].ID)
	}
	return s.renderPage(c, p, views.EventsBody(m))
}

// apiEventList answers GET /api/v1/events.
func (s *Server) apiEventList(c echo.Context) error {
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	events, err := s.cfg.Index.Events(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return apiJSON(c, list[store.Event]{Items: nonNil(events)})
}
