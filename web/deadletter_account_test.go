package web

import (
	"context"
	"net/http"
	"net/url"
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
	srv.cfg.DeadLetterAccounts = []DeadLetterAccount{{Name: "B", DeadLetters: srv.cfg.DeadLetters, NATSState: func() NATSState {
		return NATSState{LastError: "nats: no servers available for connection"}
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
		res, page = postForm(t, srv, path+"?account=%3Cb%3EC", form, cookie)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		require.Contains(t, page, "no account &#34;&lt;b&gt;C&#34;", path)
	}
	require.Zero(t, d.ordersCount(t), "nothing was sent")
	got, err := srv.cfg.DeadLetters.Get(context.Background(), d.ids["json"])
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, got.Status, "nothing was recorded")

	// B's page says its connection is down, and offers no action.
	res, page := get(t, srv, "/dead-letters?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "dl-account-down")[0], "account B: not connected to NATS (nats: no servers available for connection); reconnecting")
	require.NotContains(t, page, `id="bulk-selection"`)
	res, page = get(t, srv, "/dead-letters/"+id+"?account=B")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, byTestID(t, page, "dl-redeliver-form"))
	require.Empty(t, byTestID(t, page, "dl-show-in-stream"), "the stream browser reads the main account")
	require.Contains(t, byTestID(t, page, "dl-no-act")[0], "does not redeliver or discard account B's dead letters")
}
