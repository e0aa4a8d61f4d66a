package web

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/pause"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// Hostile names NATS allows: an account named in the server's config,
// and a stream and consumer any user of that account may create.
const (
	evilAccount  = `<b>T&EAM`
	evilStream   = `<img_src=x_onerror=alert(1)`
	evilConsumer = `<i_"&amp;`
)

// pagesAccountsConfig has jetwatch's account APP, a hostile-named account,
// OPS, and the system account.
const pagesAccountsConfig = `
accounts {
  APP { jetstream: enabled, users: [{user: app, password: app}] }
  "<b>T&EAM" { jetstream: enabled, users: [{user: team, password: team}] }
  OPS { jetstream: enabled, users: [{user: ops, password: ops}] }
  SYS { users: [{user: sys, password: sys, permissions: {
    publish: ["$SYS.REQ.SERVER.PING.JSZ", "$SYS.REQ.USER.INFO"], subscribe: ["_INBOX.>"]}}] }
}
system_account: SYS
no_auth_user: app
`

// accountsDeck is a real server with three accounts, jetwatch's sampler
// reading them through the system account, and a Server over both.
type accountsDeck struct {
	srv     *Server
	sampler *collector.Sampler
	js      jetstream.JetStream // jetwatch's own account, APP
	teamJS  jetstream.JetStream // the hostile-named account
}

func setupAccounts(t *testing.T) *accountsDeck {
	t.Helper()
	ctx := context.Background()
	ns := natstest.RunServer(t, natstest.WithAccounts(t, pagesAccountsConfig))
	clock := &lagClock{now: time.Now()}
	d := &accountsDeck{}
	var b *testBundle
	d.srv, b = setup(t, func(cfg *Config) {
		cfg.Now = clock.Now
		cfg.SamplerState = func() store.SamplerState { return d.sampler.State() }
	})
	jsOf := func(opts ...nats.Option) jetstream.JetStream {
		js, err := jetstream.New(natstest.Connect(t, ns, opts...))
		require.NoError(t, err)
		return js
	}
	nc := natstest.Connect(t, ns)
	var err error
	d.js, err = jetstream.New(nc)
	require.NoError(t, err)
	d.teamJS = jsOf(nats.UserInfo("team", "team"))
	ops := jsOf(nats.UserInfo("ops", "ops"))
	publish := func(js jetstream.JetStream, subject string, n int) {
		t.Helper()
		for range n {
			_, err := js.Publish(ctx, subject, []byte("{}"))
			require.NoError(t, err)
		}
	}

	// APP: a stream with a healthy consumer, pausable from its page.
	_, err = d.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = d.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "shipping", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	// The hostile account: a full stream with discard new, and a consumer
	// nobody reads, so it stops with 10 pending.
	_, err = d.teamJS.CreateStream(ctx, jetstream.StreamConfig{Name: evilStream, Subjects: []string{"team.>"}, MaxMsgs: 10, Discard: jetstream.DiscardNew})
	require.NoError(t, err)
	_, err = d.teamJS.CreateOrUpdateConsumer(ctx, evilStream, jetstream.ConsumerConfig{Durable: evilConsumer, AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	publish(d.teamJS, "team.x", 10)
	// OPS: a healthy stream of the same name as jetwatch's own.
	_, err = ops.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"ops.>"}})
	require.NoError(t, err)
	publish(ops, "ops.x", 2)

	sys := natstest.Connect(t, ns, nats.UserInfo("sys", "sys"))
	d.sampler, err = collector.NewSampler(nc, b.db, collector.SamplerConfig{SystemConn: sys, AllAccounts: true,
		Now: clock.Now, Interval: 10 * time.Second, StallAfter: 30 * time.Second, JSZTimeout: 2 * time.Second,
		Registerer: prometheus.NewRegistry(), Logger: slogTo(b.log)})
	require.NoError(t, err)
	// Two cycles, past the stall time: the unread consumer is stopped.
	for range 2 {
		_, err = d.sampler.SampleOnce(ctx)
		require.NoError(t, err)
		clock.Advance(40 * time.Second)
	}
	d.srv.cfg.Pauses = pause.New(d.js, pause.Config{})
	return d
}

// problemsByAccount are the triage's problems: subject, kind and link by
// data-account of their tag ("" for jetwatch's own).
type shownProblem struct{ Account, Subject, Kind, Link string }

func triageProblems(t *testing.T, page string) []shownProblem {
	t.Helper()
	var out []shownProblem
	for _, li := range nodes(parse(t, page), "problem") {
		p := shownProblem{Subject: attr(li, "data-subject"), Kind: attr(li, "data-kind")}
		for _, tag := range nodesIn(li, "account-tag") {
			p.Account = text(tag)
		}
		for c := li.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "a" {
				p.Link = attr(c, "href")
			}
		}
		out = append(out, p)
	}
	return out
}

func nodesIn(n *html.Node, id string) []*html.Node { return nodes(n, id) }

// tableStreams are the stream table's rows as account/name.
func tableStreams(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, tr := range nodes(parse(t, page), "stream-row") {
		out = append(out, attr(tr, "data-account")+"/"+attr(tr, "data-stream"))
	}
	return out
}

// postForms counts the forms of a page that post: actions.
func postForms(t *testing.T, page string) int {
	t.Helper()
	n := 0
	var walk func(*html.Node)
	walk = func(h *html.Node) {
		if h.Type == html.ElementNode && h.Data == "form" && strings.EqualFold(attr(h, "method"), "post") {
			n++
		}
		for c := h.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(parse(t, page))
	return n
}

// TestOtherAccountsOnTheOverviewStreamAndConsumerPages reads three
// accounts of a real server through the system account: the overview's
// triage names the other accounts' problems with their account and
// links to their read-only pages, its table and the stream API cover
// every account or the one chosen, and hostile names stay text.
func TestOtherAccountsOnTheOverviewStreamAndConsumerPages(t *testing.T) {
	t.Parallel()
	d := setupAccounts(t)
	srv := d.srv

	// The default overview covers every account.
	res, page := get(t, srv, "/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, page, "<b>T&", "names from JSZ are escaped")
	require.NotContains(t, page, "<img_src")
	require.NotContains(t, page, `<i_"`)
	require.Len(t, byTestID(t, page, "account-filter"), 1)
	var options []string
	walkOptions(nodes(parse(t, page), "account-select")[0], func(value string) { options = append(options, value) })
	require.Equal(t, []string{"", "APP", evilAccount, "OPS"}, options)

	problems := triageProblems(t, page)
	streamLink := views.AccountStreamURL(evilAccount, evilStream)
	consumerLink := views.AccountConsumerURL(evilAccount, evilStream, evilConsumer)
	require.Contains(t, problems, shownProblem{Account: evilAccount, Subject: evilStream, Kind: views.ProblemStream, Link: streamLink},
		"the full stream of the other account, with its account: %+v", problems)
	require.Contains(t, problems, shownProblem{Account: evilAccount, Subject: evilStream + " / " + evilConsumer, Kind: views.ProblemStopped, Link: consumerLink},
		"its consumer nobody reads: %+v", problems)
	require.Equal(t, []string{"/ORDERS", evilAccount + "/" + evilStream, "OPS/ORDERS"}, sortedCopy(tableStreams(t, page)))
	require.Len(t, byTestID(t, page, "stream-account"), 3, "the account column")
	require.Equal(t, "3", byTestID(t, page, "count-streams")[0])
	lagging := nodes(parse(t, page), "lagging-row")
	require.NotEmpty(t, lagging)
	require.Equal(t, evilAccount, attr(lagging[0], "data-account"), "the largest backlog is the other account's")

	// The filter narrows the triage, the table and the counts.
	_, page = get(t, srv, "/?account=OPS")
	require.Equal(t, []string{"OPS/ORDERS"}, tableStreams(t, page))
	require.Empty(t, triageProblems(t, page))
	require.Equal(t, "1", byTestID(t, page, "count-streams")[0])
	require.Empty(t, byTestID(t, page, "stream-account"), "one account: no account column")
	require.Contains(t, byTestID(t, page, "account-shown")[0], "OPS")
	_, page = get(t, srv, "/?account="+url.QueryEscape(evilAccount))
	require.Equal(t, []string{evilAccount + "/" + evilStream}, tableStreams(t, page))
	for _, p := range triageProblems(t, page) {
		require.Equal(t, evilAccount, p.Account)
	}
	_, page = get(t, srv, "/?account=APP")
	require.Equal(t, []string{"/ORDERS"}, tableStreams(t, page))
	for _, p := range triageProblems(t, page) {
		require.Empty(t, p.Account, "jetwatch's own account alone")
	}
	// The search form keeps the account; paging and sorting links too.
	_, page = get(t, srv, "/?account=OPS&sort=name&q=ord")
	require.Equal(t, []string{"OPS/ORDERS"}, tableStreams(t, page))
	for _, n := range nodes(parse(t, page), "stream-search") {
		require.Contains(t, renderNode(t, n), `name="account" value="OPS"`)
	}

	// The other account's stream page: what the cycle read, read-only.
	res, page = get(t, srv, streamLink)
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	require.NotContains(t, page, "<img_src")
	require.NotContains(t, page, "<b>T&")
	require.Equal(t, evilStream, byTestID(t, page, "stream-name")[0])
	require.Contains(t, byTestID(t, page, "read-only")[0], "account "+evilAccount)
	require.Contains(t, byTestID(t, page, "read-only")[0], "jetwatch's own account (APP) only")
	require.Contains(t, byTestID(t, page, "no-history")[0], "History is kept for jetwatch's own account (APP) only")
	require.Empty(t, byTestID(t, page, "stream-browse"))
	require.Empty(t, byTestID(t, page, "stream-dead-letters"))
	require.Empty(t, byTestID(t, page, "windows"))
	require.Zero(t, postForms(t, page))
	require.Equal(t, "10", byTestID(t, page, "stream-messages")[0])
	require.Len(t, byTestID(t, page, "usage-msgs"), 1, "its limit")
	rows := nodes(parse(t, page), "consumer-row")
	require.Len(t, rows, 1)
	require.Equal(t, []string{consumerLink}, links(rows[0]))

	// Its consumer's page: lag trend and state, no pause, no history.
	res, page = get(t, srv, consumerLink)
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	require.NotContains(t, page, `<i_"`)
	require.Equal(t, evilConsumer, byTestID(t, page, "consumer-name")[0])
	require.Equal(t, "10", byTestID(t, page, "consumer-pending")[0])
	require.Len(t, byTestID(t, page, "consumer-lag"), 1)
	require.Equal(t, store.LagStopped, attr(nodes(parse(t, page), "lag-state")[0], "data-state"))
	require.Len(t, byTestID(t, page, "read-only"), 1)
	require.Len(t, byTestID(t, page, "no-history"), 1)
	require.Empty(t, byTestID(t, page, "consumer-pause-form"))
	require.Zero(t, postForms(t, page))
	require.Contains(t, links(nodes(parse(t, page), "consumer-stream")[0]), streamLink)
	// jetwatch's own consumer's page still offers the pause, and history.
	_, page = get(t, srv, "/streams/ORDERS/consumers/shipping")
	require.Len(t, byTestID(t, page, "consumer-pause-form"), 1)
	require.Empty(t, byTestID(t, page, "read-only"))
	require.Len(t, byTestID(t, page, "windows"), 1)

	// The accounts page links to the same pages.
	_, page = get(t, srv, "/accounts")
	require.Contains(t, allLinks(t, page), streamLink)
	require.Contains(t, allLinks(t, page), consumerLink)

	// The API takes the same ?account=, and names the account of each item.
	type item struct {
		Account string `json:"account"`
		Name    string `json:"name"`
	}
	var list struct {
		Items  []item   `json:"items"`
		Unread []string `json:"unread_accounts"`
	}
	apiGet := func(target string, want int) string {
		t.Helper()
		res, body := get(t, srv, target)
		require.Equal(t, want, res.StatusCode, "%s: %s", target, body)
		return body
	}
	require.NoError(t, json.Unmarshal([]byte(apiGet("/api/v1/streams?account=*", http.StatusOK)), &list))
	require.ElementsMatch(t, []item{{"APP", "ORDERS"}, {evilAccount, evilStream}, {"OPS", "ORDERS"}}, list.Items)
	require.Empty(t, list.Unread)
	require.NoError(t, json.Unmarshal([]byte(apiGet("/api/v1/streams?account=OPS", http.StatusOK)), &list))
	require.Equal(t, []item{{"OPS", "ORDERS"}}, list.Items)
	require.NoError(t, json.Unmarshal([]byte(apiGet("/api/v1/streams/"+url.PathEscape(evilStream)+"/consumers?account="+url.QueryEscape(evilAccount), http.StatusOK)), &list))
	require.Equal(t, []item{{evilAccount, evilConsumer}}, list.Items)

	// An unknown account is a 404 that quotes the name, cut.
	long := strings.Repeat("N", 300)
	for _, target := range []string{"/?account=" + long, "/streams/ORDERS?account=" + long, "/api/v1/streams?account=" + long} {
		res, body := get(t, srv, target)
		require.Equal(t, http.StatusNotFound, res.StatusCode, target)
		require.Contains(t, body, "no account ", target)
		require.Contains(t, body, strings.Repeat("N", 64), target)
		require.Contains(t, body, "…", target)
		require.NotContains(t, body, strings.Repeat("N", 65), target)
	}
	require.Contains(t, apiGet("/api/v1/streams/ORDERS/consumers?account=*", http.StatusUnprocessableEntity), "name it")
	res, body := get(t, srv, "/?account=%3Cscript%3E")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, byTestID(t, body, "not-found")[0], `no account "<script>" was read in the last cycle`)
	require.NotContains(t, body, "<script>")

	// Acting or browsing with another account named is refused, and
	// nothing happens on the server: it would reach jetwatch's own
	// ORDERS, not OPS's.
	for _, target := range []string{"/api/v1/streams/ORDERS/consumers/shipping/pause?account=OPS", "/api/v1/streams/ORDERS/consumers/shipping/resume?account=OPS"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"until":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`))
		req.Header.Set("Content-Type", "application/json")
		srv.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, "%s: %s", target, rec.Body)
		require.Contains(t, rec.Body.String(), "read-only here")
	}
	info, err := d.js.Consumer(context.Background(), "ORDERS", "shipping")
	require.NoError(t, err)
	require.False(t, info.CachedInfo().Paused, "jetwatch's own consumer was not paused")
	require.Contains(t, apiGet("/api/v1/streams/ORDERS/messages?account=OPS", http.StatusUnprocessableEntity), "browsing messages")
	tinfo, err := d.teamJS.Stream(context.Background(), evilStream)
	require.NoError(t, err)
	require.Equal(t, uint64(10), tinfo.CachedInfo().State.Msgs, "the other account's stream is untouched")
	tc, err := d.teamJS.Consumer(context.Background(), evilStream, evilConsumer)
	require.NoError(t, err)
	require.Equal(t, uint64(10), tc.CachedInfo().NumPending, "and its consumer too")
}

// TestSingleAccountPagesAreUnchanged: without every-account sampling the
// overview has no selector, no account column or tags, and pages and
// API refuse another account clearly.
func TestSingleAccountPagesAreUnchanged(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now, Account: "APP"})
	_, page := get(t, srv, "/")
	require.Empty(t, byTestID(t, page, "account-filter"))
	require.Empty(t, byTestID(t, page, "stream-account"))
	require.Empty(t, byTestID(t, page, "account-tag"))
	require.NotEmpty(t, tableStreams(t, page))
	for _, s := range tableStreams(t, page) {
		require.True(t, strings.HasPrefix(s, "/"), s)
	}
	for _, l := range allLinks(t, page) {
		require.NotContains(t, l, "account=", "no link carries an account")
	}
	_, same := get(t, srv, "/?account=APP")
	require.Equal(t, tableStreams(t, page), tableStreams(t, same), "its own name is its own account")
	_, same = get(t, srv, "/?account=*")
	require.Equal(t, tableStreams(t, page), tableStreams(t, same), "every account is its own")
	for _, target := range []string{"/?account=TEAM", "/streams/ORDERS?account=TEAM", "/api/v1/streams?account=TEAM"} {
		res, body := get(t, srv, target)
		require.Equal(t, http.StatusNotFound, res.StatusCode, target)
		require.Contains(t, body, "--all-accounts", target)
	}
	_, page = get(t, srv, "/streams/ORDERS")
	require.Len(t, byTestID(t, page, "stream-browse"), 1)
	require.Empty(t, byTestID(t, page, "read-only"))
}

// TestEveryAccountStreamTablePages pages through every account's streams,
// jetwatch's own in SQLite merged with others' in memory, in each order:
// the pages together are every stream once, in the order of one sort,
// whether the other accounts hold few streams or many.
func TestEveryAccountStreamTablePages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ own, perAccount int }{{120, 6}, {4, 50}} {
		t.Run(fmt.Sprintf("own=%d", tc.own), func(t *testing.T) {
			t.Parallel()
			srv, b := setup(t)
			levels := []string{store.HealthOK, store.HealthWarning, store.HealthCritical}
			stream := func(i, a int) store.Stream {
				return store.Stream{Name: fmt.Sprintf("S%03d", (i*37+a*11)%1000), Messages: uint64((i * 13) % 17),
					Bytes: uint64(i * a), InPerSec: float64(i % 5), ConsumerCount: i % 4, SampledAt: b.now,
					Health: store.Health{Level: levels[(i*7+a)%3]}, Config: json.RawMessage(`{}`)}
			}
			c := store.Cycle{At: b.now, StreamsComplete: true}
			for i := range tc.own {
				c.Streams = append(c.Streams, stream(i, 9))
			}
			require.NoError(t, b.db.SaveCycle(context.Background(), c))
			var accounts []store.Account
			for a := range 3 {
				acc := store.Account{Name: fmt.Sprintf("A%d", a), ID: fmt.Sprintf("ID%d", a), SampledAt: b.now}
				for i := range tc.perAccount + a {
					acc.Streams = append(acc.Streams, stream(i, a))
				}
				accounts = append(accounts, acc)
			}
			b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now, Account: "APP", AllAccounts: true, Accounts: accounts})
			total := tc.own + 3*tc.perAccount + 3
			for _, sort := range store.StreamSorts {
				var all []streamKey
				// Pages run out after total rows; a few more are past the end.
				for page := 1; page <= total/streamsPerPage+3; page++ {
					res, body := get(t, srv, fmt.Sprintf("/?sort=%s&page=%d", sort, page))
					require.Equal(t, http.StatusOK, res.StatusCode)
					rows := nodes(parse(t, body), "stream-row")
					require.LessOrEqual(t, len(rows), streamsPerPage)
					for _, tr := range rows {
						all = append(all, rowOf(t, srv, b, attr(tr, "data-account"), attr(tr, "data-stream")))
					}
				}
				require.Len(t, all, total, sort)
				seen := map[string]bool{}
				for _, r := range all {
					key := r.account + "/" + r.st.Name
					require.False(t, seen[key], "%s: %s twice", sort, key)
					seen[key] = true
				}
				// Each in its key of sort as read whole: own streams from
				// their JSON, not from the columns the page was merged on.
				stale := b.now.Add(-staleAfterIntervals * srv.cfg.SampleInterval)
				for i := range all {
					all[i].key = store.StreamKeyOf(all[i].st, sort, stale)
				}
				require.True(t, slices.IsSortedFunc(all, streamOrder), "%s: the pages are in one order", sort)
			}
			// A search finds in every account, ignoring ASCII case.
			_, body := get(t, srv, "/?q=s00")
			require.NotEmpty(t, tableStreams(t, body))
			for _, s := range tableStreams(t, body) {
				require.Contains(t, strings.ToLower(s), "s00")
			}
		})
	}
}

// TestEveryAccountStreamTableLeavesOutAStreamRemovedMidPage: a cycle
// that removes one of jetwatch's own streams between the page's keys
// and its streams being read costs the page that row, not the page.
func TestEveryAccountStreamTableLeavesOutAStreamRemovedMidPage(t *testing.T) {
	t.Parallel()
	var between atomic.Pointer[func()]
	srv, b := setup(t, func(c *Config) { c.Index = cycleBetweenKeysAndStreams{Index: c.Index, between: &between} })
	cycle := func(at time.Time, names ...string) store.Cycle {
		c := store.Cycle{At: at, StreamsComplete: true}
		for _, n := range names {
			c.Streams = append(c.Streams, store.Stream{Name: n, Health: store.Health{Level: store.HealthOK}, SampledAt: at, Config: json.RawMessage(`{}`)})
		}
		return c
	}
	require.NoError(t, b.db.SaveCycle(context.Background(), cycle(b.now.Add(-time.Second), "S1", "S2", "S3")))
	b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now, Account: "APP", AllAccounts: true,
		Accounts: []store.Account{{Name: "A0", ID: "ID0", SampledAt: b.now, Streams: cycle(b.now, "S0", "S4").Streams}}})
	shown := func() []string {
		res, body := get(t, srv, "/?sort=name")
		require.Equal(t, http.StatusOK, res.StatusCode)
		var out []string
		for _, tr := range nodes(parse(t, body), "stream-row") {
			out = append(out, attr(tr, "data-account")+"/"+attr(tr, "data-stream"))
		}
		return out
	}
	require.Equal(t, []string{"A0/S0", "/S1", "/S2", "/S3", "A0/S4"}, shown())
	remove := func() { require.NoError(t, b.db.SaveCycle(context.Background(), cycle(b.now, "S1", "S3"))) }
	between.Store(&remove)
	require.Equal(t, []string{"A0/S0", "/S1", "/S3", "A0/S4"}, shown())
}

// cycleBetweenKeysAndStreams is the index, running between (when set,
// once) after reading stream keys: as if a cycle were saved then.
type cycleBetweenKeysAndStreams struct {
	Index
	between *atomic.Pointer[func()]
}

func (c cycleBetweenKeysAndStreams) QueryStreamKeys(ctx context.Context, q store.StreamQuery) (store.StreamKeyResult, error) {
	res, err := c.Index.QueryStreamKeys(ctx, q)
	if fn := c.between.Swap(nil); fn != nil {
		(*fn)()
	}
	return res, err
}

// rowOf is the stream a table row shows, from where the page read it.
func rowOf(t *testing.T, srv *Server, b *testBundle, account, name string) streamKey {
	t.Helper()
	if account == "" {
		st, err := b.db.Stream(context.Background(), name)
		require.NoError(t, err)
		return streamKey{st: &st}
	}
	for _, a := range srv.cfg.SamplerState().Accounts {
		if a.Name != account {
			continue
		}
		for i := range a.Streams {
			if a.Streams[i].Name == name {
				return streamKey{st: &a.Streams[i], account: account}
			}
		}
	}
	t.Fatalf("no stream %s in %s", name, account)
	return streamKey{}
}

func walkOptions(n *html.Node, fn func(value string)) {
	if n.Type == html.ElementNode && n.Data == "option" {
		fn(attr(n, "value"))
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walkOptions(c, fn)
	}
}

func allLinks(t *testing.T, page string) []string { return links(parse(t, page)) }

func renderNode(t *testing.T, n *html.Node) string {
	t.Helper()
	var sb strings.Builder
	require.NoError(t, html.Render(&sb, n))
	return sb.String()
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestTopLaggingAcrossAccounts keeps the largest backlogs of every
// account, as a full sort of them all would.
func TestTopLaggingAcrossAccounts(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	type backlog struct {
		account, name string
		pending       uint64
	}
	var want []backlog
	var own []views.ConsumerRow
	for i, n := range []uint64{45, 20, 5} {
		own = append(own, views.ConsumerRow{Consumer: store.Consumer{Stream: "OWN", Name: fmt.Sprintf("c%d", i), NumPending: n}})
		want = append(want, backlog{"", fmt.Sprintf("c%d", i), n})
	}
	var accounts []store.Account
	for a := range 3 {
		acc := store.Account{Name: fmt.Sprintf("A%d", a)}
		for i := range 30 {
			c := store.Consumer{Stream: "S", Name: fmt.Sprintf("c%02d", i), NumPending: uint64((i*7919 + a*31) % 50)}
			acc.Consumers = append(acc.Consumers, c)
			if c.NumPending > 0 {
				want = append(want, backlog{acc.Name, c.Name, c.NumPending})
			}
		}
		accounts = append(accounts, acc)
	}
	slices.SortStableFunc(want, func(x, y backlog) int {
		return cmp.Or(cmp.Compare(y.pending, x.pending), strings.Compare(x.name, y.name))
	})
	var got []uint64
	for _, r := range srv.topLagging(own, accounts, 10, b.now) {
		got = append(got, r.NumPending)
	}
	var wantPending []uint64
	for _, w := range want[:10] {
		wantPending = append(wantPending, w.pending)
	}
	require.Equal(t, wantPending, got)
}
