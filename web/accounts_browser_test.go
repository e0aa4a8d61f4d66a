package web

import (
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/store"
)

// TestAccountFilterInBrowser chooses an account with the overview's
// selector in Chromium, without script of its own: the table narrows to
// it, and its stream's page is read-only. Hostile names run nothing.
func TestAccountFilterInBrowser(t *testing.T) {
	b := browsertest.New(t)
	srv, tb := setup(t)
	seed(t, tb)
	const hostile = `<img src=x onerror="window.pwned=1">`
	ok := store.Health{Level: store.HealthOK}
	team := store.Account{Name: "TEAM", ID: "TEAM", SampledAt: tb.now, Health: ok,
		Streams:   []store.Stream{{Name: hostile, Messages: 3, SampledAt: tb.now, Health: ok}},
		Consumers: []store.Consumer{{Stream: hostile, Name: hostile, NumPending: 3, SampledAt: tb.now, Health: ok}}}
	ops := store.Account{Name: hostile, ID: "OPS", SampledAt: tb.now, Health: ok,
		Streams: []store.Stream{{Name: "EVENTS", SampledAt: tb.now, Health: ok}}}
	tb.setSampler(store.SamplerState{FirstCycleDone: true, LastCycleAt: tb.now, Account: "APP", AllAccounts: true,
		Accounts: []store.Account{team, ops}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	rowAccounts := `[...document.querySelectorAll("[data-testid=stream-row]")].map(r => r.dataset.account)`
	_, err := chromedp.Run(b.Ctx, chromedp.Navigate(ts.URL+"/"))
	require.NoError(t, err)
	all, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](rowAccounts))
	require.NoError(t, err)
	require.Contains(t, all, "TEAM")
	require.Contains(t, all, "")
	_, err = chromedp.Run(b.Ctx, chromedp.SetValue(chromedp.CSS(`[data-testid=account-select]`), "TEAM"))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=account-filter] button`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=account-shown]`)))
	require.NoError(t, err)
	location, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`location.search`))
	require.NoError(t, err)
	require.Equal(t, "?account=TEAM", location)
	narrowed, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](rowAccounts))
	require.NoError(t, err)
	require.Equal(t, []string{"TEAM"}, narrowed)

	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=stream-row] a`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=read-only]`)))
	require.NoError(t, err)
	name, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=stream-name]`)))
	require.NoError(t, err)
	require.Equal(t, hostile, name, "the name shows as text")
	forms, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("form[method=post]").length`))
	require.NoError(t, err)
	require.Zero(t, forms)
	pwned, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`window.pwned === 1`))
	require.NoError(t, err)
	require.False(t, pwned, "no hostile name ran")
	require.Empty(t, b.Errors(), "no script errors")
}
