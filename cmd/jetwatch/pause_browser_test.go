package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// TestPauseConsumerInBrowser pauses the demo's archiver from its page with
// a click (confirming the dialog), sees the server pause it and the page
// say until when, and resumes it with another click.
func TestPauseConsumerInBrowser(t *testing.T) {
	b := browsertest.New(t)
	base, natsURL := startDemoWithNATS(t)
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	paused := func() (bool, *time.Time) {
		t.Helper()
		c, err := js.Consumer(context.Background(), "AUDIT", "archiver")
		require.NoError(t, err)
		info := c.CachedInfo()
		return info.Paused, info.Config.PauseUntil
	}

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

	consumerPage := base + "/streams/AUDIT/consumers/archiver"
	natstest.CheckFor(t, 60*time.Second, 500*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Navigate(consumerPage)); err != nil {
			return err
		}
		forms, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`[data-testid=consumer-pause-form]`), chromedp.AtLeast(0)))
		if err != nil {
			return err
		}
		if len(forms) == 0 {
			return fmt.Errorf("archiver not sampled yet")
		}
		return nil
	})
	_, err = chromedp.Run(b.Ctx, chromedp.SetValue(chromedp.CSS(`[data-testid=pause-for]`), "4h"))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=consumer-pause-submit]`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=pause-done]`)))
	require.NoError(t, err)
	require.Equal(t, "Pause consumer archiver on AUDIT? The server delivers nothing to it until it resumes.", <-confirmed, "the click asked first")
	isPaused, until := paused()
	require.True(t, isPaused)
	require.WithinDuration(t, time.Now().Add(4*time.Hour), *until, time.Minute)

	// The next sample shows it paused, until when, with a Resume button.
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Navigate(consumerPage)); err != nil {
			return err
		}
		notes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`[data-testid=paused-until]`), chromedp.AtLeast(0)))
		if err != nil {
			return err
		}
		if len(notes) == 0 {
			return fmt.Errorf("not shown paused yet")
		}
		return nil
	})
	note, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=paused-until]`)))
	require.NoError(t, err)
	require.Contains(t, note, "Paused until")
	lag, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=consumer-lag] [data-testid=lag-state]`)))
	require.NoError(t, err)
	require.Equal(t, "paused", strings.TrimSpace(lag))

	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=consumer-resume]`)))
	require.NoError(t, err)
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if p, _ := paused(); p {
			return fmt.Errorf("still paused")
		}
		return nil
	})
	require.Empty(t, b.Errors(), "console errors (CSP violations included) on jetwatch's pages")
}
