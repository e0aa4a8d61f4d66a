package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
)

// TestEditInBrowserSendsWhatItShows edits and redelivers in Chromium, whose
// textarea and form encoding (CRLF line ends, the newline after
// <textarea>) are what the preview must see through: untouched payloads go
// out as their original bytes, an edited one as the textarea's text.
func TestEditInBrowserSendsWhatItShows(t *testing.T) {
	b := browsertest.New(t)
	srv, d := setupDesk(t)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	// edit opens a dead letter's edit form, changes the payload with
	// change (nil leaves it), previews, checks the preview with check
	// and sends; it returns the textarea's text as sent.
	edit := func(t *testing.T, id uint64, change func(string) string, check func(preview string)) string {
		t.Helper()
		_, err := chromedp.Run(b.Ctx, chromedp.Navigate(ts.URL+"/dead-letters/"+u(id)))
		require.NoError(t, err)
		_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-edit] summary`)))
		require.NoError(t, err)
		value, err := chromedp.Run(b.Ctx, chromedp.Value(chromedp.CSS(`[data-testid=dl-edit-payload]`)))
		require.NoError(t, err)
		if change != nil {
			value = change(value)
			_, err = chromedp.Run(b.Ctx, chromedp.SetValue(chromedp.CSS(`[data-testid=dl-edit-payload]`), value))
			require.NoError(t, err)
		}
		_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-preview]`)))
		require.NoError(t, err)
		_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=dl-send-edit]`)))
		require.NoError(t, err)
		preview, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=dl-edit]`)))
		require.NoError(t, err)
		check(preview)
		_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-send-edit]`)))
		require.NoError(t, err)
		_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)))
		require.NoError(t, err)
		flash, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=flash]`)))
		require.NoError(t, err)
		require.Equal(t, "Redelivered.", strings.TrimSpace(flash))
		return value
	}

	unchanged := func(preview string) {
		require.Contains(t, preview, "Unchanged: the original")
		require.NotContains(t, preview, "Sends the edited text")
	}
	edit(t, d.ids["json"], nil, unchanged)
	require.Equal(t, `{"order":"ord-1","note":"<script>alert(1)</script>"}`, string(d.sentMessage(t, 1).Data))

	// Text with a leading newline, CRLF and a lone CR: a textarea shows
	// none of them as they are.
	text := []byte("\nline one\r\nline two\rthree\n")
	edit(t, d.publishDeadLetter(t, text), nil, unchanged)
	require.Equal(t, text, d.sentMessage(t, 2).Data)

	id := d.publishDeadLetter(t, []byte(`{"order":"ord-2","items":[{"sku":"a","qty":1}]}`))
	sent := edit(t, id, func(v string) string { return strings.Replace(v, `"qty": 1`, `"qty": 2`, 1) }, func(preview string) {
		require.Contains(t, preview, "Changed: items[0].qty.")
		require.Contains(t, preview, "-       \"qty\": 1\n")
		require.Contains(t, preview, "+       \"qty\": 2\n")
		require.Equal(t, 1, strings.Count(preview, "\n-"), "one line removed")
		require.Equal(t, 1, strings.Count(preview, "\n+"), "one line added")
	})
	require.Contains(t, sent, "\n      \"qty\": 2\n", "indented, as the textarea showed it")
	require.Equal(t, sent, string(d.sentMessage(t, 3).Data), "exactly the textarea's text")

	require.Empty(t, b.Errors(), "console errors on jetwatch's pages")
}
