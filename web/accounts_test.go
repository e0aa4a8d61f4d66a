package web

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

func TestAccountsPageAndAPI(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)

	// Off: the page says how to turn it on; the navigation has no link.
	res, page := get(t, srv, "/accounts")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "accounts-off"), 1)
	require.Contains(t, byTestID(t, page, "accounts-off")[0], "--all-accounts")
	_, overview := get(t, srv, "/")
	require.Empty(t, byTestID(t, overview, "nav-accounts"))

	// Asked for, but the system account cannot be asked.
	b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now, AllAccounts: true,
		AccountsNote: "other accounts cannot be read: per-server JetStream health is unavailable"})
	_, page = get(t, srv, "/accounts")
	require.Contains(t, byTestID(t, page, "accounts-note")[0], "other accounts cannot be read")

	stalled := store.Health{Level: store.HealthCritical, Reasons: []string{"stalled: 40 pending, no ack for 6m"}}
	team := store.Account{Name: "TEAM", ID: "ABCDEF", Storage: 2048,
		Streams: []store.Stream{{Name: "ORDERS", Messages: 40, ConsumerCount: 1,
			Health: store.Health{Level: store.HealthCritical, Reasons: []string{"consumer billing: " + stalled.Reasons[0]}}}},
		Consumers: []store.Consumer{{Stream: "ORDERS", Name: "<billing>", NumPending: 40, LagState: store.LagStalled, Health: stalled}},
		Health:    store.Health{Level: store.HealthCritical, Reasons: []string{"stream ORDERS: consumer billing: " + stalled.Reasons[0]}},
	}
	b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now, AllAccounts: true,
		Accounts: []store.Account{team, {Name: "IDLE", ID: "IDLE", Health: store.Health{Level: store.HealthOK}}}})
	_, page = get(t, srv, "/accounts")
	rows := byTestID(t, page, "account-row")
	require.Len(t, rows, 2)
	require.Contains(t, rows[0], "TEAM")
	require.Contains(t, rows[0], "ABCDEF")
	require.Contains(t, rows[0], "stream ORDERS: consumer billing: stalled")
	cons := byTestID(t, page, "account-consumer")
	require.Len(t, cons, 1)
	require.Contains(t, cons[0], "ORDERS / <billing>", "names are escaped, not markup")
	require.NotContains(t, page, "<billing>")
	_, overview = get(t, srv, "/")
	require.Len(t, byTestID(t, overview, "nav-accounts"), 1)

	res, body := get(t, srv, "/api/v1/accounts")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var list struct {
		Enabled bool            `json:"enabled"`
		Items   []store.Account `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.True(t, list.Enabled)
	require.Len(t, list.Items, 2)
	require.Equal(t, uint64(40), list.Items[0].Consumers[0].NumPending)

	for _, key := range []string{"TEAM", "ABCDEF"} {
		res, body = get(t, srv, "/api/v1/accounts/"+key)
		require.Equal(t, http.StatusOK, res.StatusCode, key)
		var one store.Account
		require.NoError(t, json.Unmarshal([]byte(body), &one))
		require.Equal(t, "ABCDEF", one.ID)
	}
	res, body = get(t, srv, "/api/v1/accounts/NOPE")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, body, "--all-accounts")
}

func TestStreamAndConsumerAPIsTakeAnAccount(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	team := store.Account{Name: "TEAM", ID: "ABCDEF", SampledAt: b.now,
		Streams:   []store.Stream{{Name: "ORDERS", Messages: 40, SampledAt: b.now, Health: store.Health{Level: store.HealthOK}}},
		Consumers: []store.Consumer{{Stream: "ORDERS", Name: "billing", NumPending: 40, SampledAt: b.now, Health: store.Health{Level: store.HealthOK}}},
	}
	b.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: b.now, Account: "APP", AllAccounts: true,
		Accounts: []store.Account{team, {Name: "GONE", ID: "GONE", Unread: &store.Unread{Why: "no response", Detail: "no server answered for the account"}}}})

	type item struct {
		Account    string `json:"account"`
		Name       string `json:"name"`
		Messages   uint64 `json:"messages"`
		NumPending uint64 `json:"num_pending"`
	}
	getJSON := func(target string, want int) string {
		t.Helper()
		res, body := get(t, srv, target)
		require.Equal(t, want, res.StatusCode, "%s: %s", target, body)
		return body
	}
	var streams struct{ Items []item }
	require.NoError(t, json.Unmarshal([]byte(getJSON("/api/v1/streams", http.StatusOK)), &streams))
	require.NotEmpty(t, streams.Items)
	for _, it := range streams.Items {
		require.Equal(t, "APP", it.Account, "jetwatch's own streams carry its account")
	}
	for _, acc := range []string{"TEAM", "ABCDEF"} {
		require.NoError(t, json.Unmarshal([]byte(getJSON("/api/v1/streams?account="+acc, http.StatusOK)), &streams))
		require.Equal(t, []item{{Account: "TEAM", Name: "ORDERS", Messages: 40}}, streams.Items)
	}
	var one item
	require.NoError(t, json.Unmarshal([]byte(getJSON("/api/v1/streams/ORDERS?account=TEAM", http.StatusOK)), &one))
	require.Equal(t, item{Account: "TEAM", Name: "ORDERS", Messages: 40}, one)
	var consumers struct{ Items []item }
	require.NoError(t, json.Unmarshal([]byte(getJSON("/api/v1/streams/ORDERS/consumers?account=TEAM", http.StatusOK)), &consumers))
	require.Equal(t, []item{{Account: "TEAM", Name: "billing", NumPending: 40}}, consumers.Items)
	one = item{}
	require.NoError(t, json.Unmarshal([]byte(getJSON("/api/v1/streams/ORDERS/consumers/billing?account=TEAM", http.StatusOK)), &one))
	require.Equal(t, item{Account: "TEAM", Name: "billing", NumPending: 40}, one)

	require.Contains(t, getJSON("/api/v1/streams/ORDERS/consumers/billing?account=TEAM&history=1h", http.StatusUnprocessableEntity), "Prometheus")
	require.Contains(t, getJSON("/api/v1/streams/NOPE?account=TEAM", http.StatusNotFound), "unknown stream NOPE in account TEAM")
	require.Contains(t, getJSON("/api/v1/streams/ORDERS/consumers/nope?account=TEAM", http.StatusNotFound), "in account TEAM")
	require.Contains(t, getJSON("/api/v1/streams?account=NOPE", http.StatusNotFound), "GET /api/v1/accounts")
	require.Contains(t, getJSON("/api/v1/streams?account=GONE", http.StatusServiceUnavailable), "could not be read in the last cycle")
	// Naming jetwatch's own account is the same as naming none.
	require.NoError(t, json.Unmarshal([]byte(getJSON("/api/v1/streams?account=APP", http.StatusOK)), &streams))
	require.NotEmpty(t, streams.Items)
	require.Equal(t, "APP", streams.Items[0].Account)
}
