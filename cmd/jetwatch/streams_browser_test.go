package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// TestStreamBrowserInBrowser opens the demo's ORDERS stream from its
// page, browses its messages, filters them by subject with the form, and
// follows a dead letter's "show in stream" to the message it came from.
func TestStreamBrowserInBrowser(t *testing.T) {
	b := browsertest.New(t)
	base, natsURL := startDemoWithNATS(t)
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()

	// A message of ORDERS and its dead letter, as a service would write it.
	orig := nats.NewMsg("orders.created")
	orig.Data = []byte(`{"order_id":"ord-browser-1","note":"<img src=x onerror=\"window.__pwned=1\">"}`)
	ack, err := js.PublishMsg(ctx, orig)
	require.NoError(t, err)
	dl := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	dl.Data = orig.Data
	dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: ack.Sequence, Consumer: "billing", Reason: dlq.ReasonError,
		Error: "card declined", FailedAt: time.Now()}.Apply(dl.Header)
	dack, err := js.PublishMsg(ctx, dl)
	require.NoError(t, err)

	// The stream's page links to its messages.
	_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+"/streams/ORDERS"))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=stream-browse]`)))
	require.NoError(t, err)
	require.NoError(t, waitForPage(b.Ctx, "/streams/ORDERS/messages"))
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=sm-message]`)))
	require.NoError(t, err)
	subjects := func() []string {
		v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll("[data-testid=sm-msg-subject]")].map(e => e.textContent.trim())`))
		require.NoError(t, err)
		return v
	}
	all := subjects()
	require.NotEmpty(t, all)

	// Filter to orders.paid with the form.
	_, err = chromedp.Run(b.Ctx, chromedp.SetValue(chromedp.CSS(`[data-testid=sm-subject]`), "orders.paid"))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=sm-apply]`)))
	require.NoError(t, err)
	require.NoError(t, waitForPage(b.Ctx, "subject=orders.paid"))
	paid := subjects()
	require.NotEmpty(t, paid, "the demo publishes orders.paid")
	for _, s := range paid {
		require.Equal(t, "orders.paid", s)
	}

	// From the dead letter to its place in the stream.
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/dead-letters/%d", base, dack.Sequence))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("dead letter %d not indexed yet: %d", dack.Sequence, resp.StatusCode)
		}
		return nil
	})
	_, err = chromedp.Run(b.Ctx, chromedp.Navigate(fmt.Sprintf("%s/dead-letters/%d", base, dack.Sequence)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-show-in-stream]`)))
	require.NoError(t, err)
	require.NoError(t, waitForPage(b.Ctx, "around="+strconv.FormatUint(ack.Sequence, 10)))
	sel := fmt.Sprintf(`[data-testid=sm-message][data-seq="%d"]`, ack.Sequence)
	open, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`).open`))
	require.NoError(t, err)
	require.True(t, open, "the message the dead letter came from is open")
	payload, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel+` [data-testid=sm-payload]`)))
	require.NoError(t, err)
	require.Contains(t, payload, `"order_id": "ord-browser-1"`)
	require.True(t, strings.Contains(payload, `<img src=x`), "the payload is shown as text")
	pwned, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`window.__pwned !== undefined`))
	require.NoError(t, err)
	require.False(t, pwned, "a payload ran script")
	seqs, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("[data-testid=sm-message]").length`))
	require.NoError(t, err)
	require.Greater(t, seqs, 1, "its neighbours are shown too")

	// The stream it came from still holds it: browsing consumed nothing.
	s, err := js.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	got, err := s.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	require.Equal(t, orig.Data, got.Data)

	require.Empty(t, b.Errors(), "console errors (CSP violations included) on jetwatch's pages")
}
