package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// countLimit is where the list's counts stop counting and say "10000+";
// searchCountLimit is the same for a full-text search, where each match
// counted costs more.
const (
	countLimit       = 10000
	searchCountLimit = 1000
)

// countResult is a capped count computed beside the page.
type countResult struct {
	n    int
	more bool
	err  error
}

// countAsync counts f up to limit on another connection while the page is
// read, so a search page pays for its slowest query, not the sum.
func countAsync(c echo.Context, reads DeadLetters, f store.DeadLetterFilter, limit int) <-chan countResult {
	out := make(chan countResult, 1)
	go func() {
		n, more, err := reads.CountUpTo(c.Request().Context(), f, limit)
		out <- countResult{n, more, err}
	}()
	return out
}

// errNoDeadLetters answers when this jetwatch was built without the
// dead-letter reads or actions (an embedding that left them out): a 503
// whose message says so, since nothing internal is in it.
var errNoDeadLetters = unavailableError{"dead letters are not served by this jetwatch: it runs without its dead-letter index or redelivery; nothing was changed"}

// deadLetterList answers GET /dead-letters: filters, counts, a page.
func (s *Server) deadLetterList(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	m := views.DeadLetterList{SinceText: c.QueryParam("since"), UntilText: c.QueryParam("until"), CSRF: csrfToken(c),
		Account: src.account, Accounts: s.accountChoices(src.account),
		// The bulk form posts under the account shown, to its own runner:
		// an account without one offers none.
		CanAct: src.actions != nil && (src.account == "" || src.bulk != nil) && principal(c).Role.Allows(auth.Operator)}
	if src.refused != nil {
		m.AccountRefused = src.refused()
	}
	if src.nats != nil {
		if st := src.nats(); !st.Connected {
			m.AccountDown = accountDownText(src.account, st)
		}
	}
	f, err := s.deadLetterFilter(c)
	m.Filter = f
	if err != nil {
		if !errors.Is(err, store.ErrBadFilter) {
			return err
		}
		m.Problem = strings.TrimPrefix(err.Error(), store.ErrBadFilter.Error()+": ")
		m.Filter, m.SinceText, m.UntilText = formEcho(f), clipEcho(m.SinceText), clipEcho(m.UntilText)
		f = store.DeadLetterFilter{}
	}
	// Before the index's state: that is read just before the rows, so the
	// banners and the rows tell of the same moment.
	m.Jobs = s.unfinishedJobs(ctx, src.bulk)
	if src.index != nil {
		// The list is still worth showing when the index's state is not.
		if st, err := src.index.Status(ctx); err != nil {
			s.logger.Warn("dead-letter index status unreadable", "err", err)
		} else {
			m.Index = &st
		}
	}
	pending := countAsync(c, src.reads, store.DeadLetterFilter{Status: store.StatusPending}, countLimit)
	if m.Problem == "" {
		limit := countLimit
		if f.Q != "" {
			limit = searchCountLimit
		}
		matched := countAsync(c, src.reads, f, limit)
		page, err := src.reads.List(ctx, f, 50, c.QueryParam("cursor"))
		r := <-matched
		if errors.Is(err, store.ErrBadFilter) {
			m.Problem = strings.TrimPrefix(err.Error(), store.ErrBadFilter.Error()+": ")
		} else if err != nil {
			return err
		}
		m.Items = page.Items
		if page.NextCursor != "" {
			q := views.DeadLetterQuery(f, src.account)
			q.Set("cursor", page.NextCursor)
			m.NextURL = "/dead-letters?" + q.Encode()
		}
		switch {
		case m.Problem != "": // the count failed on the same filter
		case r.err != nil:
			return r.err
		default:
			m.Matched, m.MatchedMore = r.n, r.more
		}
	}
	r := <-pending
	if r.err != nil {
		return r.err
	}
	m.Pending, m.PendingMore = r.n, r.more
	m.GroupsURL = "/dead-letters/groups?" + views.DeadLetterQuery(f, src.account).Encode()
	m.ExportURL = "/dead-letters/export?" + views.DeadLetterQuery(f, src.account).Encode()
	p := s.page(c, "Dead letters", m.Problem == "") // a refused filter has nothing to refresh
	p.Nav = "dead-letters"
	if m.Problem != "" {
		// The page says what is wrong with the filter, with the status an
		// API client would get.
		return s.renderPageStatus(c, http.StatusUnprocessableEntity, p, views.DeadLettersBody(m))
	}
	return s.renderPage(c, p, views.DeadLettersBody(m))
}

// maxEcho is the longest filter value the form shows back after a
// problem: the problem says what was wrong with a longer one, and echoing
// half a megabyte of search would make the answer that large.
const maxEcho = 1024

// formEcho is a refused filter as the form shows it back.
func formEcho(f store.DeadLetterFilter) store.DeadLetterFilter {
	f.Stream, f.Consumer, f.Subject, f.Q = clipEcho(f.Stream), clipEcho(f.Consumer), clipEcho(f.Subject), clipEcho(f.Q)
	return f
}

func clipEcho(s string) string {
	if len(s) > maxEcho {
		return ""
	}
	return s
}

// deadLetterGroups answers GET /dead-letters/groups: the filtered dead
// letters grouped by normalised error, with a 24 h trend.
func (s *Server) deadLetterGroups(c echo.Context) error {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return err
	}
	f, err := s.deadLetterFilter(c)
	if err != nil {
		if errors.Is(err, store.ErrBadFilter) {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
		}
		return err
	}
	p := s.page(c, "Dead letters by error", true)
	p.Nav = "dead-letters"
	groups, err := src.reads.Groups(c.Request().Context(), f, 100, p.Now, 24*time.Hour, 24)
	if err != nil {
		return err
	}
	m := views.DeadLetterGroups{Filter: f, ListURL: "/dead-letters?" + views.DeadLetterQuery(f, src.account).Encode(), Window: "24 h", Account: src.account}
	for _, g := range groups {
		trend := make([]uint64, len(g.Trend))
		for i, n := range g.Trend {
			trend[i] = uint64(n)
		}
		// The group's own list: the filter plus its example error as search.
		gf := f
		gf.Q = firstWords(g.Example, 4)
		m.Groups = append(m.Groups, views.GroupRow{DeadLetterGroup: g, Spark: views.NewSparkline(trend), ListURL: "/dead-letters?" + views.DeadLetterQuery(gf, src.account).Encode()})
	}
	return s.renderPage(c, p, views.DeadLetterGroupsBody(m))
}

// firstWords are the first n words of s without digits, a search that finds
// the group's members.
func firstWords(s string, n int) string {
	var out []string
	for _, w := range strings.Fields(s) {
		if strings.ContainsAny(w, "0123456789\"'") {
			continue
		}
		out = append(out, w)
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, " ")
}

// accountChoices are the accounts the dead-letters page offers, with the
// one shown marked; none when no other account is configured.
func (s *Server) accountChoices(current string) []views.AccountChoice {
	if len(s.cfg.DeadLetterAccounts) == 0 {
		return nil
	}
	main := s.cfg.SamplerState().Account
	if main == "" {
		main = "this jetwatch's account"
	}
	out := []views.AccountChoice{{Label: main, URL: "/dead-letters", Current: current == ""}}
	for _, a := range s.cfg.DeadLetterAccounts {
		out = append(out, views.AccountChoice{Label: a.Name, URL: "/dead-letters?" + url.Values{"account": {a.Name}}.Encode(), Current: current == a.Name})
	}
	return out
}

// accountDownText says on an account's page that its connection is down,
// so an empty or still list is not taken for a quiet account.
func accountDownText(account string, st NATSState) string {
	t := "account " + account + ": not connected to NATS"
	if !st.Since.IsZero() {
		t += " since " + st.Since.UTC().Format(time.RFC3339)
	}
	if st.LastError != "" {
		t += " (" + st.LastError + ")"
	}
	if st.Closed {
		return t + "; the connection was closed for good: restart jetwatch once its user is fixed. Dead letters shown are those indexed before."
	}
	return t + "; reconnecting. Dead letters shown are those indexed before."
}
