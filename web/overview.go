package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/views"
)

// topLaggingLimit is how many lagging consumers the overview lists.
const topLaggingLimit = 10

func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	streams, err := s.cfg.Index.Streams(ctx)
	if err != nil {
		return err
	}
	counts, err := s.cfg.Index.Counts(ctx)
	if err != nil {
		return err
	}
	lagging, err := s.cfg.Index.TopLagging(ctx, topLaggingLimit)
	if err != nil {
		return err
	}
	stalled, err := s.cfg.Index.Stalled(ctx)
	if err != nil {
		return err
	}
	servers, err := s.cfg.Index.Servers(ctx)
	if err != nil {
		return err
	}
	p := s.page(c, "Overview", "overview", true)
	m := views.Overview{
		Page: p, Counts: counts, TopLagging: lagging, Stalled: stalled, Servers: servers,
		Sampler: s.samplerInfo(), StallAfter: s.cfg.StallAfter,
	}
	m.Streams = make([]views.StreamRow, len(streams))
	for i := range streams {
		m.Streams[i] = views.StreamRow{Stream: streams[i], Stale: s.stale(streams[i].SampledAt, p.Now)}
	}
	if wantsFragment(c) {
		return s.render(c, http.StatusOK, views.OverviewLive(m))
	}
	return s.render(c, http.StatusOK, views.OverviewPage(m))
}

func (s *Server) samplerInfo() views.SamplerInfo {
	st := s.cfg.SamplerState()
	return views.SamplerInfo{
		FirstCycleDone: st.FirstCycleDone, LastCycleAt: st.LastCycleAt, LastDuration: st.LastDuration,
		Errors: st.Errors, JSZ: st.JSZ, Interval: s.cfg.SampleInterval,
	}
}
