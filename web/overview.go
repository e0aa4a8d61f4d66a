package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

const (
	// topLaggingLimit is how many lagging consumers the overview lists.
	topLaggingLimit = 10
	// streamsPerPage is the length of a page of the stream table: with
	// 10,000 streams the overview stays small and fast.
	streamsPerPage = 50
	// maxStreamPage bounds ?page=, far beyond any deployment.
	maxStreamPage = 1_000_000
)

// overview answers GET /?account=&own=&q=&sort=&page=: what is wrong now
// (the triage), counts, one page of the stream table (searched by name,
// sorted, worst first by default), the largest backlogs and per-server
// health. jetwatch's own streams and consumers are left out of all of
// them unless own is set. With every account sampled, all of it covers
// every account, or the one account chosen. Live refresh asks for the
// same URL, so it keeps the table's parameters.
func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	own, err := ownParam(c)
	if err != nil {
		return err
	}
	q, err := streamQueryParams(c)
	if err != nil {
		return err
	}
	st := s.cfg.SamplerState()
	scope, err := s.overviewScope(c, st)
	if err != nil {
		return err
	}
	p := s.page(c, "Overview", true)
	q.Own, q.StaleBefore = own, p.Now.Add(-staleAfterIntervals*s.cfg.SampleInterval)
	others := scope.others(st)
	var counts store.Counts
	var lagging []views.ConsumerRow
	if scope.includesOwn() {
		if counts, err = s.cfg.Index.Counts(ctx, own); err != nil {
			return err
		}
		top, err := s.cfg.Index.TopLagging(ctx, topLaggingLimit, own)
		if err != nil {
			return err
		}
		lagging = s.consumerRows(top, nil, p.Now)
	}
	addAccountCounts(&counts, others, own)
	lagging = s.topLagging(lagging, others, topLaggingLimit, p.Now)
	servers, err := s.cfg.Index.Servers(ctx)
	if err != nil {
		return err
	}
	triage, err := s.triage(ctx, p.Now, own, scope.includesOwn(), others)
	if err != nil {
		return err
	}
	// The navigation counts every problem jetwatch sees, leaving its own
	// streams out: the default overview's triage, not a narrowed one.
	if whole := scope.every == st.AllAccounts && scope.includesOwn(); whole && !own {
		p.Badges = triage.Badges()
	} else {
		p.Badges = s.navBadges(ctx, p.Now)
	}
	m := views.Overview{
		Page: p, Counts: counts, Servers: servers, Triage: triage,
		Sampler: s.samplerInfo(), StallAfter: s.cfg.StallAfter, ShowOwn: own,
		TopLagging: lagging, Accounts: accountFilter(st, scope),
	}
	t := views.StreamTable{From: q.Offset + 1, Search: q.Search, Sort: q.Sort, ShowOwn: own,
		Account: scope.value, ShowAccount: scope.every && st.AllAccounts}
	keys := accountStreamKeys(others, q)
	switch {
	case scope.every:
		if t.Rows, t.Total, err = s.everyAccountStreams(ctx, q, keys, p.Now); err != nil {
			return err
		}
	case scope.other != nil:
		t.Total = len(keys)
		t.Rows = s.streamRows(keys[min(q.Offset, len(keys)):min(q.Offset+q.Limit, len(keys))], p.Now)
	default:
		res, err := s.cfg.Index.QueryStreams(ctx, q)
		if err != nil {
			return err
		}
		t.Total = res.Total
		t.Rows = make([]views.StreamRow, len(res.Streams))
		for i, st := range res.Streams {
			t.Rows[i] = s.streamRow(st, p.Now)
		}
	}
	page := q.Offset/streamsPerPage + 1
	if page > 1 {
		// A page past the end (the streams went away) links back to the last.
		t.PrevURL = views.TableURL(t.Account, own, q.Search, q.Sort, min(page-1, max((t.Total+streamsPerPage-1)/streamsPerPage, 1)))
	}
	if q.Offset+len(t.Rows) < t.Total {
		t.NextURL = views.TableURL(t.Account, own, q.Search, q.Sort, page+1)
	}
	m.Table = t
	return s.renderPage(c, p, views.OverviewLive(m))
}

// streamQueryParams reads the stream table's ?q=, ?sort= and ?page=.
func streamQueryParams(c echo.Context) (store.StreamQuery, error) {
	q := store.StreamQuery{Sort: c.QueryParam("sort"), Limit: streamsPerPage}
	var err error
	if q.Search, err = textParam(c, "q", store.MaxStreamSearch); err != nil {
		return q, err
	}
	if q.Sort == "" {
		q.Sort = store.SortHealth
	}
	if !slices.Contains(store.StreamSorts, q.Sort) {
		return q, echo.NewHTTPError(http.StatusUnprocessableEntity,
			"sort "+shortQuote(q.Sort)+": use one of health, name, messages, bytes, rate or consumers")
	}
	if v := c.QueryParam("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxStreamPage {
			return q, echo.NewHTTPError(http.StatusUnprocessableEntity, "page "+shortQuote(v)+": use a page number from 1")
		}
		q.Offset = (n - 1) * streamsPerPage
	}
	return q, nil
}

// samplerInfo is the sampler's state as the overview shows it.
func (s *Server) samplerInfo() views.SamplerInfo {
	st := s.cfg.SamplerState()
	return views.SamplerInfo{
		FirstCycleDone: st.FirstCycleDone, LastCycleAt: st.LastCycleAt, LastDuration: st.LastDuration,
		Errors: st.Errors, JSZ: st.JSZ, Interval: s.cfg.SampleInterval,
	}
}
