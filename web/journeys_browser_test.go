package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
)

// TestJourneyInBrowser goes from a dead letter to its order's journey in
// Chromium, then looks a journey up by its trace id with the form.
func TestJourneyInBrowser(t *testing.T) {
	b := browsertest.New(t)
	srv, jb := setupJourneys(t)
	id := jb.orderSeven(t, srv)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	_, err := chromedp.Run(b.Ctx, chromedp.Navigate(ts.URL+"/dead-letters/"+u(id)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-journey-link][href="/journeys/o-7"]`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=journey-steps]`)))
	require.NoError(t, err)
	kinds, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("[data-testid=journey-step]")].map(r => r.dataset.kind)`))
	require.NoError(t, err)
	require.Equal(t, []string{"message", "message", "dead_letter", "breaker", "breaker", "action", "message"}, kinds)
	text, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=journey-steps]`)))
	require.NoError(t, err)
	require.Contains(t, text, "redelivery")
	require.Contains(t, text, "gateway timeout")

	// The lookup form, by the trace id.
	_, err = chromedp.Run(b.Ctx, chromedp.SetValue(chromedp.CSS(`[data-testid=journey-lookup] input[name=key]`), journeyTrace))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Submit(chromedp.CSS(`[data-testid=journey-lookup] input[name=key]`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=journey-key]`)))
	require.NoError(t, err)
	key, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=journey-key]`)))
	require.NoError(t, err)
	require.Equal(t, journeyTrace, strings.TrimSpace(key))
	require.Empty(t, b.Errors(), "no script errors")
}
