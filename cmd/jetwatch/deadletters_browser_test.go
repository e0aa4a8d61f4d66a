package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// TestDeadLettersInBrowser filters the demo's dead letters, opens one,
// redelivers it with a click (confirming the dialog) and sees the result;
// a hostile payload is shown as text and runs nothing.
func TestDeadLettersInBrowser(t *testing.T) {
	b := browsertest.New(t)
	base, natsURL := startDemoWithNATS(t)

	// A dead letter whose payload and headers try to run script.
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	hostile := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	hostile.Data = []byte(`<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`)
	hostile.Header.Set("X-Note", `"><img src=x onerror="window.__pwned=3">`)
	dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Consumer: "billing", Reason: dlq.ReasonError,
		Error: `<b>bold</b> javascript:alert(1)`, FailedAt: time.Now()}.Apply(hostile.Header)
	ack, err := js.PublishMsg(context.Background(), hostile)
	require.NoError(t, err)

	// Confirm dialogs are accepted, as an operator would; the test sees
	// the outcome on the page.
	dialogs := chromedp.Events(b.Ctx, page.JavascriptDialogOpening)
	confirmed := make(chan string, 4)
	go func() {
		for e, err := range dialogs {
			if err != nil {
				return
			}
			confirmed <- e.Message
			go chromedp.Do(b.Ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error { //nolint:errcheck // seen on the page
				_, err := cdp.Call(ctx, tg, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()

	// The hostile one renders inert.
	detail := fmt.Sprintf("%s/dead-letters/%d", base, ack.Sequence)
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/dead-letters/%d", base, ack.Sequence))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("dead letter %d not indexed yet: %d", ack.Sequence, resp.StatusCode)
		}
		return nil
	})
	_, err = chromedp.Run(b.Ctx, chromedp.Navigate(detail))
	require.NoError(t, err)
	payload, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=dl-payload]`)))
	require.NoError(t, err)
	require.Contains(t, payload, "<script>window.__pwned=1</script>")
	pwned, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`window.__pwned !== undefined`))
	require.NoError(t, err)
	require.False(t, pwned, "a payload or header ran script")
	checkHostileNamesInert(t, b, base, js)

	// Filter to the demo's max-deliver dead letters of ORDERS and open one.
	natstest.CheckFor(t, 60*time.Second, 500*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Navigate(base+"/dead-letters")); err != nil {
			return err
		}
		if _, err := chromedp.Run(ctx, chromedp.SetValue(chromedp.CSS(`input[name=stream]`), "ORDERS")); err != nil {
			return err
		}
		if _, err := chromedp.Run(ctx, chromedp.SetValue(chromedp.CSS(`select[name=reason]`), "max_deliver")); err != nil {
			return err
		}
		if _, err := chromedp.Run(ctx, chromedp.SetValue(chromedp.CSS(`select[name=status]`), "pending")); err != nil {
			return err
		}
		if _, err := chromedp.Run(ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-apply]`))); err != nil {
			return err
		}
		// Wait for the filtered page, not the one the click left.
		if err := waitForPage(ctx, "reason=max_deliver"); err != nil {
			return err
		}
		rows, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`[data-testid=dl-row]`), chromedp.AtLeast(0)))
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("no pending max_deliver dead letter of ORDERS yet")
		}
		return nil
	})
	loc, err := chromedp.Run(b.Ctx, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "reason=max_deliver")
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-link]`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitReady(chromedp.CSS(`[data-testid=dl-redeliver]`)))
	require.NoError(t, err)
	reason, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=dl-reason]`)))
	require.NoError(t, err)
	require.Equal(t, "max_deliver", strings.TrimSpace(reason))

	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=dl-redeliver]`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)))
	require.NoError(t, err)
	require.Equal(t, "Redeliver this message?", <-confirmed, "the click asked first")
	flash, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=flash]`)))
	require.NoError(t, err)
	require.Equal(t, "Redelivered.", strings.TrimSpace(flash))
	status, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`h1 [data-testid=dl-status]`)))
	require.NoError(t, err)
	require.Equal(t, "redelivered", strings.TrimSpace(status))

	require.Empty(t, b.Errors(), "console errors (CSP violations included) on jetwatch's pages")
}

// waitForPage waits until the tab has loaded a URL containing part; reads
// fail while a navigation is under way, and are retried.
func waitForPage(ctx context.Context, part string) error {
	for {
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			`location.href.includes(`+strconv.Quote(part)+`) && document.readyState === "complete"`))
		if err == nil && ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("page with %q not loaded: %w", part, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
