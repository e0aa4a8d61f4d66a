package web

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// The overview across accounts. jetwatch's own account is in SQLite;
// the others, read through the system account, are in memory (the last
// cycle). The overview shows one of them, or every one: then its stream
// table merges SQLite's keys with the others sorted in memory the way
// SQLite sorts, so it stays paged, searched and sorted, and reads whole
// only the own streams that land on the page.

// accountScope is which accounts a page or list shows.
type accountScope struct {
	// every is set for every account jetwatch reads; other for one
	// other account alone; neither for jetwatch's own.
	every bool
	other *store.Account
	// value is the ?account= that links keep: "" for the default.
	value string
}

// includesOwn says whether jetwatch's own account is shown.
func (sc accountScope) includesOwn() bool { return sc.other == nil }

// others are the other accounts shown, readable or not.
func (sc accountScope) others(st store.SamplerState) []store.Account {
	switch {
	case sc.other != nil:
		return []store.Account{*sc.other}
	case sc.every:
		return st.Accounts
	}
	return nil
}

// overviewScope reads the overview's ?account=. With every account
// sampled the default is every account; else it is jetwatch's own, and
// only its name (or views.EveryAccount) is accepted. Another account
// that could not be read this cycle is shown with why, not refused.
func (s *Server) overviewScope(c echo.Context, st store.SamplerState) (accountScope, error) {
	v := c.QueryParam("account")
	switch {
	case v == views.EveryAccount || v == "":
		return accountScope{every: st.AllAccounts}, nil
	case v == st.Account:
		return accountScope{value: v}, nil
	}
	a, err := findAccount(c, st, v)
	if err != nil {
		return accountScope{}, err
	}
	return accountScope{other: a, value: v}, nil
}

// findAccount is another account the last cycle read (or failed to), by
// name or ID, or a 404 naming it quoted and cut.
func findAccount(c echo.Context, st store.SamplerState, name string) (*store.Account, error) {
	for i := range st.Accounts {
		if a := &st.Accounts[i]; a.Name == name || a.ID == name {
			return a, nil
		}
	}
	where := "the Accounts page lists those jetwatch reads"
	if isAPI(c) {
		where = "GET /api/v1/accounts lists those jetwatch reads"
	}
	if !st.AllAccounts {
		return nil, notFoundError{"no account " + shortQuote(name) + " is read: jetwatch reads only its own account unless started with --all-accounts and a system-account user"}
	}
	return nil, notFoundError{"no account " + shortQuote(name) + " was read in the last cycle: " + where + " (--all-accounts)"}
}

// accountFilter is the overview's account selector for scope.
func accountFilter(st store.SamplerState, sc accountScope) views.AccountFilter {
	f := views.AccountFilter{Enabled: st.AllAccounts, Own: st.Account, Selected: views.EveryAccount}
	switch {
	case sc.other != nil:
		f.Selected = sc.other.Name
		if u := sc.other.Unread; u != nil {
			f.Note = "account " + sc.other.Name + " could not be read in the last cycle: " + u.Why + " (" + u.Detail + "); it is asked again every cycle"
		}
	case !sc.every:
		f.Selected = st.Account
	}
	for _, a := range st.Accounts {
		f.Others = append(f.Others, a.Name)
	}
	return f
}

// streamKey is a stream as the stream table sorts it: its place in the
// table's order, and the stream itself once it is at hand (another
// account's, in memory; jetwatch's own when read for its page).
// Sorting and merging 20,000 of them moves a few words each, and
// jetwatch's own are decoded only for the page.
type streamKey struct {
	key store.StreamKey
	st  *store.Stream
	// account is the other account of st; "" for jetwatch's own.
	account string
}

// accountStreamKeys are the streams of accounts that q keeps (search,
// own), sorted as q sorts.
func accountStreamKeys(accounts []store.Account, q store.StreamQuery) []streamKey {
	var keys []streamKey
	search := asciiLower(q.Search)
	for i := range accounts {
		a := &accounts[i]
		for j := range a.Streams {
			st := &a.Streams[j]
			if (q.Own || !st.Own) && (search == "" || strings.Contains(asciiLower(st.Name), search)) {
				keys = append(keys, streamKey{key: store.StreamKeyOf(st, q.Sort, q.StaleBefore), st: st, account: a.Name})
			}
		}
	}
	slices.SortFunc(keys, streamOrder)
	return keys
}

// streamRows are the rows shown for keys.
func (s *Server) streamRows(keys []streamKey, now time.Time) []views.StreamRow {
	rows := make([]views.StreamRow, len(keys))
	for i, k := range keys {
		rows[i] = s.streamRow(*k.st, now)
		rows[i].Account = k.account
	}
	return rows
}

// streamOrder compares streams of one order as the store's QueryStreams
// orders them (so merged pages never overlap); jetwatch's own account
// breaks the last tie, then the account's name.
func streamOrder(a, b streamKey) int {
	return cmp.Or(store.CompareStreamKeys(a.key, b.key), strings.Compare(a.account, b.account))
}

// everyAccountStreams is one page of every account's streams: jetwatch's
// own from SQLite merged with others (sorted by accountStreamKeys). Own
// keys are read from the first that can fall on the page (lo: before it
// stand at most len(others) rows of others), so with few streams in
// other accounts only about a page of them is read. Only the own streams
// that land on the page are then read whole.
func (s *Server) everyAccountStreams(ctx context.Context, q store.StreamQuery, others []streamKey, now time.Time) ([]views.StreamRow, int, error) {
	off, limit := max(q.Offset, 0), q.Limit
	lo := max(0, off-len(others))
	oq := q
	oq.Offset, oq.Limit = lo, off+limit-lo
	res, err := s.cfg.Index.QueryStreamKeys(ctx, oq)
	if err != nil {
		return nil, 0, err
	}
	total := res.Total + len(others)
	// Merging from own[lo] and the first other, the others before own[lo]
	// come first: they are among the off-lo rows skipped, as they fall
	// before the page.
	i, j, skip := 0, 0, off-lo
	var page []streamKey
	var ownNames []string
	for len(page) < limit && (i < len(res.Keys) || j < len(others)) {
		var k streamKey
		if i < len(res.Keys) && (j >= len(others) || streamOrder(streamKey{key: res.Keys[i]}, others[j]) <= 0) {
			k, i = streamKey{key: res.Keys[i]}, i+1
		} else {
			k, j = others[j], j+1
		}
		if skip > 0 {
			skip--
			continue
		}
		if k.st == nil {
			ownNames = append(ownNames, k.key.Name)
		}
		page = append(page, k)
	}
	own, err := s.cfg.Index.StreamsNamed(ctx, ownNames)
	if err != nil {
		return nil, 0, err
	}
	// An own stream a cycle removed since its key was read is left out.
	shown := page[:0]
	for _, k := range page {
		if k.st == nil {
			st, ok := own[k.key.Name]
			if !ok {
				continue
			}
			k.st = &st
		}
		shown = append(shown, k)
	}
	return s.streamRows(shown, now), total, nil
}

// addAccountCounts adds other accounts' streams and consumers to c.
func addAccountCounts(c *store.Counts, accounts []store.Account, own bool) {
	if c.StreamsByHealth == nil {
		c.StreamsByHealth = map[string]int{}
	}
	for i := range accounts {
		a := &accounts[i]
		for j := range a.Streams {
			if st := &a.Streams[j]; own || !st.Own {
				c.Streams++
				c.Messages += st.Messages
				c.Bytes += st.Bytes
				c.StreamsByHealth[st.Health.Level]++
			}
		}
		for j := range a.Consumers {
			if cs := &a.Consumers[j]; own || !cs.Own {
				c.Consumers++
				if cs.Stalled {
					c.ConsumersStalled++
				}
			}
		}
	}
}

// topLagging merges own (already the largest backlogs, in order) with
// the other accounts' consumers, keeping the limit largest. Only the
// best limit of the others are kept while looking: 100,000 consumers
// are not copied.
func (s *Server) topLagging(own []views.ConsumerRow, accounts []store.Account, limit int, now time.Time) []views.ConsumerRow {
	type candidate struct {
		c       *store.Consumer
		account string
	}
	before := func(a, b *store.Consumer) bool {
		return cmp.Or(cmp.Compare(b.NumPending, a.NumPending), strings.Compare(a.Stream, b.Stream), strings.Compare(a.Name, b.Name)) < 0
	}
	var best []candidate // sorted, at most limit
	for i := range accounts {
		a := &accounts[i]
		for j := range a.Consumers {
			cs := &a.Consumers[j]
			if cs.NumPending == 0 || cs.Own || (len(best) == limit && !before(cs, best[limit-1].c)) {
				continue
			}
			at, _ := slices.BinarySearchFunc(best, cs, func(x candidate, c *store.Consumer) int {
				if before(x.c, c) {
					return -1
				}
				return 1
			})
			best = slices.Insert(best, at, candidate{cs, a.Name})
			best = best[:min(len(best), limit)]
		}
	}
	rows := own
	for _, b := range best {
		r := s.consumerRows([]store.Consumer{*b.c}, nil, now)[0]
		r.Account = b.account
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b views.ConsumerRow) int {
		return cmp.Or(cmp.Compare(b.NumPending, a.NumPending), strings.Compare(a.Stream, b.Stream), strings.Compare(a.Name, b.Name))
	})
	return rows[:min(len(rows), limit)]
}

// accountProblems are other accounts' troubles for the triage: an
// account that could not be read (or only partly), its streams' own
// health (limits, replicas, leader) and its unwell consumers (falling
// behind, stalled, stopped...), each marked with its account and linked
// to its read-only page.
func accountProblems(accounts []store.Account) []views.Problem {
	var out []views.Problem
	for i := range accounts {
		a := &accounts[i]
		page := "/accounts#account-" + url.PathEscape(a.ID)
		if a.Unread != nil {
			out = append(out, views.Problem{Kind: views.ProblemUnread, Severity: store.HealthCritical, Account: a.Name,
				Subject: "account " + a.Name, Link: page,
				Text: "could not be read in the last cycle (" + a.Unread.Why + "): " + a.Unread.Detail + "; it is asked again every cycle"})
			continue
		}
		if a.Problem != "" {
			out = append(out, views.Problem{Kind: views.ProblemUnread, Severity: store.HealthWarning, Account: a.Name,
				Subject: "account " + a.Name, Link: page, Text: "partly read: " + a.Problem})
		}
		for j := range a.Streams {
			st := &a.Streams[j]
			if st.Health.Level != store.HealthCritical && st.Health.Level != store.HealthWarning {
				continue
			}
			if p, ok := streamProblem(*st); ok {
				p.Account, p.Link = a.Name, views.AccountStreamURL(a.Name, st.Name)
				out = append(out, p)
			}
		}
		for j := range a.Consumers {
			cs := &a.Consumers[j]
			if cs.Stalled || cs.Health.Level == store.HealthCritical || cs.Health.Level == store.HealthWarning {
				p := consumerProblem(*cs)
				p.Account, p.Link = a.Name, views.AccountConsumerURL(a.Name, cs.Stream, cs.Name)
				out = append(out, p)
			}
		}
	}
	return out
}

// asciiLower lowers ASCII letters only, as SQLite's LIKE ignores case.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
