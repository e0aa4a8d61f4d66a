package web

import (
	"cmp"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// topLaggingLimit is how many lagging consumers the overview lists.
const topLaggingLimit = 10

// overview answers GET /?own=: connection state, counts, per-server
// health, every stream with its health, the most lagging and the stalled
// consumers. jetwatch's own streams and consumers are left out of all of
// them unless own is set.
func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	own, err := ownParam(c)
	if err != nil {
		return err
	}
	streams, err := s.cfg.Index.Streams(ctx)
	if err != nil {
		return err
	}
	counts, err := s.cfg.Index.Counts(ctx, own)
	if err != nil {
		return err
	}
	lagging, err := s.cfg.Index.TopLagging(ctx, topLaggingLimit, own)
	if err != nil {
		return err
	}
	stalled, err := s.cfg.Index.Stalled(ctx, own)
	if err != nil {
		return err
	}
	servers, err := s.cfg.Index.Servers(ctx)
	if err != nil {
		return err
	}
	p := s.page(c, "Overview", true)
	breakers, err := s.cfg.Index.Breakers(ctx, p.Now)
	if err != nil {
		return err
	}
	m := views.Overview{
		Page: p, Counts: counts, Servers: servers,
		Sampler: s.samplerInfo(), StallAfter: s.cfg.StallAfter, ShowOwn: own,
	}
	for _, b := range breakers {
		if b.State != store.BreakerClosed {
			m.Breakers = append(m.Breakers, b)
		}
	}
	m.Streams = make([]views.StreamRow, 0, len(streams))
	for _, st := range streams {
		if own || !st.Own {
			m.Streams = append(m.Streams, s.streamRow(st, p.Now))
		}
	}
	// Worst first: with a thousand streams, the ones that need the operator
	// must not hide in the middle. Within a level, by name as listed.
	slices.SortStableFunc(m.Streams, func(a, b views.StreamRow) int {
		return cmp.Compare(levelRank(b.Level()), levelRank(a.Level()))
	})
	m.TopLagging = s.consumerRows(lagging, nil, p.Now)
	m.Stalled = s.consumerRows(stalled, nil, p.Now)
	return s.renderPage(c, p, views.OverviewLive(m))
}

// samplerInfo is the sampler's state as the overview shows it.
func (s *Server) samplerInfo() views.SamplerInfo {
	st := s.cfg.SamplerState()
	return views.SamplerInfo{
		FirstCycleDone: st.FirstCycleDone, LastCycleAt: st.LastCycleAt, LastDuration: st.LastDuration,
		Errors: st.Errors, JSZ: st.JSZ, Interval: s.cfg.SampleInterval,
	}
}

// levelRank orders health levels by how urgently they need the operator.
func levelRank(level string) int {
	switch level {
	case store.HealthCritical:
		return 3
	case store.HealthWarning:
		return 2
	case store.HealthStale:
		return 1
	}
	return 0
}
