package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natsconn"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// accountsConfig has jetwatch's main account A (the no-auth user's), an
// account B with a user of its own, and the system account.
const accountsConfig = `
accounts {
  A { jetstream: enabled, users: [{user: a, password: a}] }
  B { jetstream: enabled, users: [{user: b, password: b}] }
  SYS { users: [{user: sys, password: sys}] }
}
system_account: SYS
no_auth_user: a
`

func TestAccountFlagIsCheckedBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	none := func(string) string { return "" }
	for arg, want := range map[string]string{
		"<b>x</b>=ctx":                   `bad --account "<b>x</b>": the name may hold letters, digits, - and _ only`,
		strings.Repeat("n", 65) + "=ctx": "at most 64",
		"B":                              `bad --account "B": give NAME=CONTEXT`,
		"B=":                             `bad --account "B=": give NAME=CONTEXT`,
		"=ctx":                           `bad --account "": the name may hold`,
	} {
		_, err := parseFlags("serve", []string{"--account", arg}, none, &bytes.Buffer{})
		require.ErrorIs(t, err, ErrBadAccount, arg)
		require.ErrorContains(t, err, want, arg)
		require.Less(t, len(err.Error()), 400, "the error repeats at most a bounded part of the input")
	}
	_, err := parseFlags("serve", []string{"--account", "B=one", "--account", "b=two"}, none, &bytes.Buffer{})
	require.ErrorIs(t, err, ErrBadAccount)
	require.ErrorContains(t, err, `"B" and "b" name the same account`)

	env := func(k string) string { return map[string]string{"JETWATCH_ACCOUNTS": " B=ctxB , C=ctxC "}[k] }
	cfg, err := parseFlags("serve", nil, env, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, []accountSpec{{"B", "ctxB"}, {"C", "ctxC"}}, cfg.Accounts)
	cfg, err = parseFlags("serve", []string{"--account", "D=ctxD", "--account", "E_1=ctx-e.json"}, env, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, []accountSpec{{"D", "ctxD"}, {"E_1", "ctx-e.json"}}, cfg.Accounts, "flags replace the variable")

	_, err = parseFlags("serve", nil, func(k string) string { return map[string]string{"JETWATCH_ACCOUNTS": "B=x,<i>=y"}[k] }, &bytes.Buffer{})
	require.ErrorIs(t, err, ErrBadAccount)
	require.ErrorContains(t, err, "JETWATCH_ACCOUNTS")

	_, err = parseFlags("demo", []string{"--account", "B=ctxB"}, none, &bytes.Buffer{})
	require.ErrorContains(t, err, "flag provided but not defined: -account", "demo has one account only")
}

// An unknown context stops serve at once, naming the contexts there are,
// as --context does. Not parallel: the context directory comes from
// XDG_CONFIG_HOME.
func TestAccountWithUnknownContextStopsServe(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	dir := filepath.Join(xdg, "nats", "context")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	for _, n := range []string{"team-a", "team-b"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n+".json"), []byte(`{"url":"nats://127.0.0.1:1"}`), 0o600))
	}
	data := t.TempDir()
	err := run(t.Context(), []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--server", "nats://127.0.0.1:1",
		"--account", "B=team-c", "--log-level", "error"}, func(string) string { return "" }, &bytes.Buffer{})
	require.ErrorIs(t, err, natsconn.ErrUnknownContext)
	require.ErrorContains(t, err, `--account B: unknown nats context "team-c"`)
	require.ErrorContains(t, err, "available: team-a, team-b")
	_, statErr := os.Stat(accountPartition(data, "B"))
	require.ErrorIs(t, statErr, os.ErrNotExist, "nothing was created for the account")
}

// writeContextFile writes a natscli context file and returns its path,
// which --account takes as the context.
func writeContextFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".json")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// serveAccounts runs serve as the main account's user with args added,
// until the test ends, and returns the dashboard's base URL, its data
// directory and what it printed and logged (warnings and worse).
func serveAccounts(t *testing.T, srv *server.Server, args ...string) (string, string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	data := t.TempDir() // before the shutdown cleanup: removed after it
	go func() {
		done <- run(ctx, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--server", srv.ClientURL(),
			"--user", "a", "--password", "a", "--log-level", "warn"}, args...), func(string) string { return "" }, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		if t.Failed() {
			t.Log(out.String())
		}
	})
	var base string
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		m := dashboardLine.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("not serving yet: %s", out.String())
		}
		base = m[1]
		return nil
	})
	return base, data, out
}

// failOne makes one message of a new ORDERS stream a dead letter in the
// account of nc: consumer billing fetches it twice without acking, and the
// next pull trips MaxDeliver. It returns the account's JetStream.
func failOne(t *testing.T, nc *nats.Conn, payload string) jetstream.JetStream {
	t.Helper()
	ctx := t.Context()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := js.Stream(ctx, collector.DefaultDLQStream)
		return err // jetwatch's streams exist in this account: its bridge runs
	})
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "orders.created", []byte(payload))
	require.NoError(t, err)
	cons, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, AckWait: 300 * time.Millisecond})
	require.NoError(t, err)
	for range 2 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		for range batch.Messages() { // not acked
		}
	}
	_, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second)) // the pull that trips MaxDeliver
	require.NoError(t, err)
	return js
}

// A dead letter in account B is captured by B's own bridge into B's DLQ
// stream and indexed in B's partition, not in the main account's index;
// B's series carry its account label and the main account's stay as they
// were.
func TestDeadLetterOfAnotherAccountIsIndexedInItsPartition(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"b","password":"b"}`, srv.ClientURL()))
	base, data, _ := serveAccounts(t, srv, "--account", "B="+ctxB)

	jsB := failOne(t, natstest.Connect(t, srv, nats.UserInfo("b", "b")), `{"order":"b-1"}`)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := jsB.Stream(t.Context(), collector.DefaultDLQStream)
		if err != nil {
			return err
		}
		if n := s.CachedInfo().State.Msgs; n != 1 {
			return fmt.Errorf("%d dead letters in B's DLQ stream, want 1", n)
		}
		return nil
	})

	db, err := store.OpenFile(t.Context(), accountPartition(data, "B"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var page store.DeadLetterPage
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		page, err = db.ListDeadLetters(t.Context(), store.DeadLetterFilter{}, 10, "")
		if err != nil {
			return err
		}
		if len(page.Items) != 1 {
			return fmt.Errorf("%d dead letters in B's partition, want 1", len(page.Items))
		}
		return nil
	})
	require.Equal(t, "ORDERS", page.Items[0].Stream)
	require.Equal(t, "billing", page.Items[0].Consumer)

	// The main account's DLQ stream and index hold nothing of B's.
	jsA, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("a", "a")))
	require.NoError(t, err)
	dlqA, err := jsA.Stream(t.Context(), collector.DefaultDLQStream)
	require.NoError(t, err)
	require.Zero(t, dlqA.CachedInfo().State.Msgs)
	var dead struct{ Items []struct{ Stream string } }
	getJSON(t, base+"/api/v1/dead-letters", &dead)
	require.Empty(t, dead.Items)

	_, metrics := httpGet(t, base+"/metrics")
	require.Contains(t, metrics, `jetwatch_dead_letters_indexed_total{account="B",consumer="billing",reason="max_deliver",stream="ORDERS"} 1`)
	require.Contains(t, metrics, `jetwatch_nats_connected{account="B"} 1`)
	require.Contains(t, metrics, "\njetwatch_nats_connected 1\n", "the main account's series keep their labels")
	require.Contains(t, metrics, "\njetwatch_dead_letter_index_lag 0\n")
	require.Contains(t, metrics, `jetwatch_dead_letter_index_lag{account="B"} 0`)
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		_, metrics := httpGet(t, base+"/metrics")
		for _, want := range []string{`jetwatch_dead_letters_pending{account="B"} 1`, "\njetwatch_dead_letters_pending 0\n"} {
			if !strings.Contains(metrics, want) {
				return fmt.Errorf("no %s in /metrics", want)
			}
		}
		return nil
	})
}

// With B's server unreachable, the main account's dead letters are
// captured and indexed as ever, and /metrics says B is not connected.
func TestAnAccountWhoseServerIsDownHoldsNothingBack(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxB := writeContextFile(t, "b", `{"url":"nats://127.0.0.1:1","user":"b","password":"b"}`)
	base, data, _ := serveAccounts(t, srv, "--account", "B="+ctxB)

	failOne(t, natstest.Connect(t, srv, nats.UserInfo("a", "a")), `{"order":"a-1"}`)
	var dead struct {
		Items []struct{ Stream, Consumer string }
	}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/dead-letters", &dead)
		if len(dead.Items) != 1 {
			return fmt.Errorf("%d dead letters, want 1", len(dead.Items))
		}
		return nil
	})
	require.Equal(t, "ORDERS", dead.Items[0].Stream)
	res, _ := httpGet(t, base+"/readyz")
	require.Equal(t, 200, res.StatusCode)
	_, metrics := httpGet(t, base+"/metrics")
	require.Contains(t, metrics, `jetwatch_nats_connected{account="B"} 0`)
	require.Contains(t, metrics, "\njetwatch_nats_connected 1\n")
	_, err := os.Stat(accountPartition(data, "B"))
	require.NoError(t, err, "B's partition is there, waiting for B's server")
}

// publishDeadLetter puts a dead letter of ORDERS/billing straight into the
// DLQ stream of js's account, as a service does, once jetwatch's streams
// exist there.
func publishDeadLetter(t *testing.T, js jetstream.JetStream, payload string) {
	t.Helper()
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := js.Stream(t.Context(), collector.DefaultDLQStream)
		return err
	})
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(payload)
	dlq.Envelope{Stream: "ORDERS", Consumer: "billing", Subject: "orders.created", Sequence: 1, Reason: dlq.ReasonError}.Apply(m.Header)
	_, err = js.PublishMsg(t.Context(), m)
	require.NoError(t, err)
}

// B's dead letters are read under ?account=B on the pages and the API,
// each carrying its account; the main account's URLs keep their meaning;
// an unknown account is a 404 naming it, escaped and cut; and actions on
// B's dead letters are refused without touching either account's dead
// letter #1.
func TestAnotherAccountsDeadLettersAreReadUnderItsName(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"b","password":"b"}`, srv.ClientURL()))
	base, _, _ := serveAccounts(t, srv, "--account", "B="+ctxB)
	jsA, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("a", "a")))
	require.NoError(t, err)
	jsB, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("b", "b")))
	require.NoError(t, err)
	publishDeadLetter(t, jsA, `{"order":"a-1"}`)
	publishDeadLetter(t, jsB, `{"order":"b-1"}`)

	type item struct {
		ID               uint64
		Stream, Status   string
		Account          string
		Payload          []byte
		PayloadAvailable bool `json:"payload_available"`
	}
	var listB struct{ Items []item }
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		listB.Items = nil
		getJSON(t, base+"/api/v1/dead-letters?account=B", &listB)
		if len(listB.Items) != 1 {
			return fmt.Errorf("%d dead letters of B listed, want 1", len(listB.Items))
		}
		return nil
	})
	require.Equal(t, item{ID: 1, Stream: "ORDERS", Status: "pending", Account: "B"}, item{ID: listB.Items[0].ID,
		Stream: listB.Items[0].Stream, Status: listB.Items[0].Status, Account: listB.Items[0].Account})
	var oneB item
	getJSON(t, base+"/api/v1/dead-letters/1?account=B", &oneB)
	require.Equal(t, "B", oneB.Account)
	require.Equal(t, `{"order":"b-1"}`, string(oneB.Payload))
	var listA struct{ Items []map[string]any }
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		listA.Items = nil
		getJSON(t, base+"/api/v1/dead-letters", &listA)
		if len(listA.Items) != 1 {
			return fmt.Errorf("%d dead letters of the main account, want 1", len(listA.Items))
		}
		return nil
	})
	require.NotContains(t, listA.Items[0], "account", "the main account's answer is as before")

	// The overview counts B's pending dead letter beside the main
	// account's, lists it under what is wrong now with a link to B's
	// pending list, and the navigation's badge counts both.
	res, overview := httpGet(t, base+"/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Regexp(t, `data-testid="dead-letters-elsewhere"[^>]*>\s*and 1\s+in other accounts`, overview)
	require.Regexp(t, `data-kind="dead-letters" data-severity="warning" data-subject="account B">`, overview)
	require.Contains(t, overview, `href="/dead-letters?status=pending&amp;account=B" class="subject">account B</a>`)
	require.Regexp(t, `data-testid="nav-dead-letters">\s*Dead letters\s*<span[^>]*>2</span>`, overview)
	var oneA item
	getJSON(t, base+"/api/v1/dead-letters/1", &oneA)
	require.Equal(t, `{"order":"a-1"}`, string(oneA.Payload))

	res, page := httpGet(t, base+"/dead-letters?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `data-testid="dl-account">of account B</span>`)
	require.Contains(t, page, `href="/dead-letters/1?account=B" data-testid="dl-link"`)
	require.Contains(t, page, `<input type="hidden" name="account" value="B">`)
	require.Contains(t, page, `data-testid="dl-account-current">B</strong>`)
	require.Contains(t, page, `href="/dead-letters/groups?account=B"`)
	require.Contains(t, page, `href="/dead-letters/export?account=B"`)
	require.Contains(t, page, `action="/dead-letters/bulk/plan?account=B" id="bulk-selection"`, "B's bulk form posts under B")
	require.Contains(t, page, `href="/redeliveries?account=B" data-testid="dl-bulk-jobs-link"`)
	res, page = httpGet(t, base+"/dead-letters/1?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, "b-1")
	require.NotContains(t, page, "a-1")
	require.Contains(t, page, `action="/dead-letters/1/redeliver?account=B" data-testid="dl-redeliver-form"`)
	require.Contains(t, page, `action="/dead-letters/1/discard?account=B" data-testid="dl-discard-form"`)
	res, page = httpGet(t, base+"/dead-letters")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `data-testid="dl-account-choice">B</a>`, "the selector offers B")
	require.Contains(t, page, `href="/dead-letters/1" data-testid="dl-link"`)
	res, page = httpGet(t, base+"/dead-letters/export?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `"account":"B"`)
	require.Contains(t, page, `"stream":"ORDERS"`)

	// Unknown accounts: 404 naming them, escaped and cut.
	res, page = httpGet(t, base+"/dead-letters?account="+url.QueryEscape("<script>alert(1)</script>"))
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, page, "no account &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;")
	require.NotContains(t, page, "<script>alert(1)")
	res, page = httpGet(t, base+"/api/v1/dead-letters/1?account="+strings.Repeat("x", 5000))
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, page, `no account \"`+strings.Repeat("x", 64)+`\"…`)
	require.Less(t, len(page), 1000)
	require.Contains(t, page, "B, or leave account out")

	// A bulk form without its CSRF token is refused under ?account= as
	// everywhere, and a redelivery of B's #1 goes to B's ORDERS, leaving
	// the main account's #1 and ORDERS alone.
	res, body := postJSON(t, base+"/dead-letters/bulk?account=B")
	require.Equal(t, http.StatusForbidden, res.StatusCode, body)
	res, body = postJSON(t, base+"/api/v1/dead-letters/1/redeliver?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	ordersB, err := jsB.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	require.Equal(t, uint64(1), ordersB.CachedInfo().State.Msgs, "redelivered within B")
	sent, err := ordersB.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, `{"order":"b-1"}`, string(sent.Data))
	ordersA, err := jsA.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	require.Zero(t, ordersA.CachedInfo().State.Msgs, "nothing sent in the main account")
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/dead-letters/1?account=B", &oneB)
		if oneB.Status != "redelivered" {
			return fmt.Errorf("B's #1 is %s", oneB.Status)
		}
		return nil
	})
	getJSON(t, base+"/api/v1/dead-letters/1", &oneA)
	require.Equal(t, "pending", oneA.Status)

	// A discard within B, of B's #2: the main account has no #2.
	publishDeadLetter(t, jsB, `{"order":"b-2"}`)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		res, body = postJSON(t, base+"/api/v1/dead-letters/2/discard?account=B")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", res.StatusCode, body)
		}
		return nil
	})
	res, body = postJSON(t, base+"/api/v1/dead-letters/2/discard")
	require.Equal(t, http.StatusNotFound, res.StatusCode, body)
	getJSON(t, base+"/api/v1/dead-letters/1", &oneA)
	require.Equal(t, "pending", oneA.Status)

	// What was done to B's dead letters is audited with their account.
	type entry struct{ Action, Target, Account, Result string }
	var entries struct{ Items []entry }
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		entries.Items = nil
		getJSON(t, base+"/api/v1/audit", &entries)
		for _, want := range []entry{
			{"payload.view", "dead-letter 1", "B", "shown"},
			{"payload.view", "dead-letter 1", "", "shown (API)"},
			{"payload.view", "dead-letter 1", "B", "shown (API)"},
			{"redeliver", "/api/v1/dead-letters/1/redeliver", "B", "redelivered to orders.created (stored in ORDERS #1)"},
			{"discard", "/api/v1/dead-letters/2/discard", "B", "discarded"},
		} {
			if !slices.Contains(entries.Items, want) {
				return fmt.Errorf("no audit entry %+v in %+v", want, entries.Items)
			}
		}
		return nil
	})
	res, page = httpGet(t, base+"/audit?action=redeliver")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `data-testid="audit-account">of account B</span>`)
}

func postJSON(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

// leastPrivilegeConfig gives account B's jetwatch user exactly the
// permissions README lists for an --account user, and B a client of its
// own for the test's services.
const leastPrivilegeConfig = `
accounts {
  A { jetstream: enabled, users: [{user: a, password: a}] }
  B { jetstream: enabled, users: [
    {user: svc, password: svc},
    {user: jw, password: jw, permissions: {
      publish: [
        "$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.>",
        "$JS.API.STREAM.CREATE.JETWATCH_ADVISORIES", "$JS.API.STREAM.CREATE.DLQ", "$JS.API.STREAM.CREATE.JETWATCH_DLQ_ACTIONS", "$JS.API.STREAM.CREATE.KV_jetwatch_bulk_jobs",
        "$JS.API.CONSUMER.CREATE.JETWATCH_ADVISORIES.>",
        "$JS.API.CONSUMER.CREATE.DLQ.>", "$JS.API.CONSUMER.CREATE.JETWATCH_DLQ_ACTIONS.>",
        "$JS.API.CONSUMER.MSG.NEXT.>", "$JS.ACK.>", "$JS.API.CONSUMER.INFO.>", "$JS.API.STREAM.MSG.GET.>", "$JS.API.DIRECT.GET.DLQ",
        "$JS.API.CONSUMER.DELETE.DLQ.>", "$JS.API.CONSUMER.DELETE.JETWATCH_DLQ_ACTIONS.>",
        "dlq.>", "jetwatch.dlq.actions.>", "jetwatch.relay.>", "$SYS.REQ.USER.INFO",
        "$KV.jetwatch_bulk_jobs.>", "$JS.API.CONSUMER.CREATE.KV_jetwatch_bulk_jobs.>", "$JS.API.DIRECT.GET.KV_jetwatch_bulk_jobs.>",
        "orders.>"
      ],
      subscribe: ["_INBOX.>", "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>"]
    }}
  ] }
  SYS { users: [{user: sys, password: sys}] }
}
system_account: SYS
no_auth_user: a
`

// With only the permissions README lists, an account's user captures,
// indexes, shows and redelivers its dead letters, and the server refuses
// it nothing.
func TestAnAccountUserNeedsOnlyTheListedPermissions(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, leastPrivilegeConfig))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"jw","password":"jw"}`, srv.ClientURL()))
	base, _, out := serveAccounts(t, srv, "--account", "B="+ctxB)

	jsB := failOne(t, natstest.Connect(t, srv, nats.UserInfo("svc", "svc")), `{"order":"b-1"}`)
	var one struct{ Status, Account string }
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		res, body := httpGet(t, base+"/api/v1/dead-letters/1?account=B")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", res.StatusCode, body)
		}
		return nil
	})
	res, body := postJSON(t, base+"/api/v1/dead-letters/1/redeliver?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	orders, err := jsB.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	require.Equal(t, uint64(2), orders.CachedInfo().State.Msgs, "the original and its redelivery")
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/dead-letters/1?account=B", &one)
		if one.Status != "redelivered" {
			return fmt.Errorf("B's #1 is %s", one.Status)
		}
		return nil
	})
	require.Equal(t, "B", one.Account)
	require.NotContains(t, strings.ToLower(out.String()), "permissions violation")
	require.NotContains(t, out.String(), "account=B", "nothing of B's went wrong")
}

// An --account whose user is in jetwatch's own account, or in the account
// of an earlier --account, is refused: a log line and its page say why,
// and nothing of it is captured, while the main account and the first
// --account of B capture as ever.
func TestAnAccountAlreadyCapturedIsRefused(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxA := writeContextFile(t, "a", fmt.Sprintf(`{"url":%q,"user":"a","password":"a"}`, srv.ClientURL()))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"b","password":"b"}`, srv.ClientURL()))
	base, data, out := serveAccounts(t, srv, "--account", "SELF="+ctxA, "--account", "B="+ctxB, "--account", "B2="+ctxB)

	for name, why := range map[string]string{
		"SELF": "--account SELF is a user of jetwatch&#39;s own account (A), whose dead letters jetwatch captures already",
		"B2":   "--account B and --account B2 are users of one account (B): its dead letters are captured under B only",
	} {
		natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			res, page := httpGet(t, base+"/dead-letters?account="+name)
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%d", res.StatusCode)
			}
			if !strings.Contains(page, `data-testid="dl-account-refused">`+why) {
				return fmt.Errorf("%s's page does not say why it is refused", name)
			}
			return nil
		})
		require.Contains(t, out.String(), "an --account is refused")
		require.Contains(t, out.String(), "account="+name)
	}
	_, page := httpGet(t, base+"/dead-letters?account=B")
	require.NotContains(t, page, "dl-account-refused", "the first --account of B is not refused")

	failOne(t, natstest.Connect(t, srv, nats.UserInfo("a", "a")), `{"order":"a-1"}`)
	failOne(t, natstest.Connect(t, srv, nats.UserInfo("b", "b")), `{"order":"b-1"}`)
	var dead struct{ Items []struct{ Stream string } }
	for _, url := range []string{base + "/api/v1/dead-letters", base + "/api/v1/dead-letters?account=B"} {
		natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			getJSON(t, url, &dead)
			if len(dead.Items) != 1 {
				return fmt.Errorf("%s: %d dead letters, want 1", url, len(dead.Items))
			}
			return nil
		})
	}
	// Both dead letters are indexed; the refused accounts' partitions hold
	// neither, and their DLQ capture never ran.
	for _, name := range []string{"SELF", "B2"} {
		getJSON(t, base+"/api/v1/dead-letters?account="+name, &dead)
		require.Empty(t, dead.Items, name)
		db, err := store.OpenFile(t.Context(), accountPartition(data, name))
		require.NoError(t, err)
		n, err := db.CountDeadLetters(t.Context(), store.DeadLetterFilter{})
		require.NoError(t, err)
		require.Zero(t, n, name)
		require.NoError(t, db.Close())
	}
	_, metrics := httpGet(t, base+"/metrics")
	require.Contains(t, metrics, `jetwatch_dead_letters_indexed_total{account="B",consumer="billing",reason="max_deliver",stream="ORDERS"} 1`)
	require.NotContains(t, metrics, `jetwatch_dead_letters_indexed_total{account="SELF"`)
	require.NotContains(t, metrics, `jetwatch_dead_letters_indexed_total{account="B2"`)
}

// A bulk job under ?account=B runs on B's own runner, its job kept in B's
// bucket: it redelivers B's dead letters within B, its links carry the
// account, and the main account's dead letter, stream and jobs stay as
// they were.
func TestABulkJobOfAnotherAccountRedeliversWithinIt(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"b","password":"b"}`, srv.ClientURL()))
	base, _, _ := serveAccounts(t, srv, "--account", "B="+ctxB)
	jsA, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("a", "a")))
	require.NoError(t, err)
	jsB, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("b", "b")))
	require.NoError(t, err)
	publishDeadLetter(t, jsA, `{"order":"a-1"}`)
	publishDeadLetter(t, jsB, `{"order":"b-1"}`)
	var one struct{ Status string }
	for _, u := range []string{base + "/api/v1/dead-letters/1", base + "/api/v1/dead-letters/1?account=B"} {
		natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			res, body := httpGet(t, u)
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d %s", u, res.StatusCode, body)
			}
			return nil
		})
	}

	var job struct {
		ID, State, URL string
		Sent, Total    int
	}
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error { // until B's runner has its bucket
		res, err := http.Post(base+"/api/v1/redeliveries?account=B", "application/json",
			strings.NewReader(`{"filter":{},"action":"redeliver","rate_per_sec":100,"account":"B"}`))
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", res.StatusCode, body)
		}
		return json.Unmarshal(body, &job)
	})
	require.Equal(t, 1, job.Total)
	require.Equal(t, "/redeliveries/"+job.ID+"?account=B", job.URL)
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/redeliveries/"+job.ID+"?account=B", &job)
		if job.State != "done" || job.Sent != 1 {
			return fmt.Errorf("job %s, %d sent", job.State, job.Sent)
		}
		return nil
	})
	ordersB, err := jsB.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	require.Equal(t, uint64(1), ordersB.CachedInfo().State.Msgs, "redelivered within B")
	sent, err := ordersB.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, `{"order":"b-1"}`, string(sent.Data))
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/dead-letters/1?account=B", &one)
		if one.Status != "redelivered" {
			return fmt.Errorf("B's #1 is %s", one.Status)
		}
		return nil
	})
	_, err = jsB.KeyValue(t.Context(), "jetwatch_bulk_jobs")
	require.NoError(t, err, "B's jobs are kept in B")

	// The main account: its #1 pending, its ORDERS empty, its jobs none,
	// and B's job is not found under it.
	getJSON(t, base+"/api/v1/dead-letters/1", &one)
	require.Equal(t, "pending", one.Status)
	ordersA, err := jsA.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	require.Zero(t, ordersA.CachedInfo().State.Msgs, "nothing sent in the main account")
	var jobs struct{ Total int }
	getJSON(t, base+"/api/v1/redeliveries", &jobs)
	require.Zero(t, jobs.Total)
	res, _ := httpGet(t, base+"/api/v1/redeliveries/"+job.ID)
	require.Equal(t, http.StatusNotFound, res.StatusCode)

	res, page := httpGet(t, base+"/redeliveries?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `href="/redeliveries/`+job.ID+`?account=B" data-testid="bulk-job-link"`)
	require.Contains(t, page, `data-testid="bulk-jobs-account">of account B`)
	res, page = httpGet(t, base+job.URL)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `href="/redeliveries?account=B"`)
}

// serve hands each --account's index to the alert evaluator: a
// dead_letter_match rule naming account B fires on B's dead letter,
// labelled with B, and not on the main account's.
func TestADeadLetterRuleNamingAnAccountFiresOnItsDeadLetters(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"b","password":"b"}`, srv.ClientURL()))
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte("receivers: [{name: ops, url: 'http://127.0.0.1:9/hook'}]\nrules:\n"+
		"  - {name: b-dead, kind: dead_letter_match, account: B, receivers: [ops]}\n"), 0o600))
	base, _, _ := serveAccounts(t, srv, "--account", "B="+ctxB, "--rules", rules, "--alert-interval", "200ms")
	jsA, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("a", "a")))
	require.NoError(t, err)
	jsB, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("b", "b")))
	require.NoError(t, err)
	publishDeadLetter(t, jsA, `{"order":"a-1"}`)
	publishDeadLetter(t, jsB, `{"order":"b-1"}`)

	var alerts struct {
		Items []struct {
			Rule      string
			Instances []struct{ Labels map[string]string }
		}
	}
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/alerts", &alerts)
		if len(alerts.Items) != 1 || len(alerts.Items[0].Instances) == 0 {
			return fmt.Errorf("no instance of b-dead yet: %+v", alerts.Items)
		}
		return nil
	})
	require.Len(t, alerts.Items[0].Instances, 1, "B's dead letter only, not the main account's")
	require.Equal(t, map[string]string{"account": "B", "stream": "ORDERS", "consumer": "billing"}, alerts.Items[0].Instances[0].Labels)
}

// With --all-accounts too, another account's dead letter links its stream
// and consumer to that account's read-only pages, found by the account
// NATS says B's user is in; without it they are not linked (the plain
// pages are the main account's).
func TestAnotherAccountsDeadLetterLinksToItsReadOnlyPages(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, natstest.WithAccounts(t, accountsConfig))
	ctxB := writeContextFile(t, "b", fmt.Sprintf(`{"url":%q,"user":"b","password":"b"}`, srv.ClientURL()))
	base, _, _ := serveAccounts(t, srv, "--account", "B="+ctxB, "--all-accounts",
		"--system-user", "sys", "--system-password", "sys", "--sample-interval", "1s")
	jsB, err := jetstream.New(natstest.Connect(t, srv, nats.UserInfo("b", "b")))
	require.NoError(t, err)
	publishDeadLetter(t, jsB, `{"order":"b-1"}`)

	var page string
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		var res *http.Response
		res, page = httpGet(t, base+"/dead-letters/1?account=B")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		if !strings.Contains(page, `href="/streams/ORDERS?account=B"`) {
			return fmt.Errorf("stream not linked to B's page yet")
		}
		return nil
	})
	require.Regexp(t, `data-testid="dl-consumer"><a href="/streams/ORDERS/consumers/[^"?]+\?account=B">`, page)
	require.NotContains(t, page, `href="/streams/ORDERS"`, "never the main account's page of the same name")
}
