package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// Under ?account=B, with a valid CSRF token, no form reaches the main
// account's redeliverer or bulk runner: B's reads here are the very index
// the main account's actions work on, so a handler that fell back to them
// would send the dead letter.
func TestActionsUnderAnotherAccountNeverReachTheMainAccounts(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	// C may act, B may not; neither runs bulk jobs.
	srv.cfg.DeadLetterAccounts = []DeadLetterAccount{{Name: "B", DeadLetters: srv.cfg.DeadLetters, NATSState: func() NATSState {
		return NATSState{LastError: "nats: no servers available for connection"}
	}}, {Name: "C", DeadLetters: srv.cfg.DeadLetters, Actions: srv.cfg.DeadLetterActions, NATSState: func() NATSState {
		return NATSState{Connected: true}
	}}}
	id := u(d.ids["json"])
	token, cookie := csrfOf(t, srv, "/dead-letters/"+id+"?account=B")
	for _, path := range []string{"/dead-letters/" + id + "/redeliver", "/dead-letters/" + id + "/discard", "/dead-letters/" + id + "/edit",
		"/dead-letters/bulk/plan", "/dead-letters/bulk"} {
		form := url.Values{"csrf": {token}, "id": {id}, "action": {"redeliver"}}
		res, page := postForm(t, srv, path+"?account=B", form, cookie)
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, path)
		require.Contains(t, page, "account B", path)
		require.Contains(t, page, "nothing was changed", path)
		if strings.HasPrefix(path, "/dead-letters/bulk") {
			res, page = postForm(t, srv, path+"?account=C", form, cookie)
			require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, path)
			require.Contains(t, page, "bulk jobs on account C&#39;s dead letters are not served", path)
		}
		res, page = postForm(t, srv, path+"?account=%3Cb%3EC", form, cookie)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		require.Contains(t, page, "no account &#34;&lt;b&gt;C&#34;", path)
	}
	for _, path := range []string{"/api/v1/redeliveries?account=C", "/api/v1/redeliveries?account=B"} {
		code, body := postJSON(t, srv, path, `{"filter":{},"action":"redeliver","rate_per_sec":100}`)
		require.Equal(t, http.StatusServiceUnavailable, code, path)
		require.Contains(t, body["error"], "nothing was changed", path)
	}
	code, body := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{},"action":"redeliver","rate_per_sec":100,"account":"C"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, "a body naming another account than the URL is refused")
	require.Contains(t, body["error"], `the body names account "C" but the URL none: give the account as ?account=NAME`)
	require.Zero(t, d.ordersCount(t), "nothing was sent")
	got, err := srv.cfg.DeadLetters.Get(context.Background(), d.ids["json"])
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, got.Status, "nothing was recorded")

	// B's page says its connection is down, and offers no action.
	res, page := get(t, srv, "/dead-letters?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "dl-account-down")[0], "account B: not connected to NATS (nats: no servers available for connection); reconnecting")
	require.NotContains(t, page, `id="bulk-selection"`)
	res, page = get(t, srv, "/dead-letters?account=C")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, byTestID(t, page, "dl-account-down"))
	require.NotContains(t, page, `id="bulk-selection"`, "C may act on one dead letter at a time, not in bulk")
	res, page = get(t, srv, "/dead-letters/"+id+"?account=C")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, page, `action="/dead-letters/`+id+`/redeliver?account=C"`)
	res, page = get(t, srv, "/dead-letters/"+id+"?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, byTestID(t, page, "dl-redeliver-form"))
	require.Empty(t, byTestID(t, page, "dl-show-in-stream"), "the stream browser reads the main account")
	require.Contains(t, byTestID(t, page, "dl-no-act")[0], "does not redeliver or discard account B's dead letters")
}
