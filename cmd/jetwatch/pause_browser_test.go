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
	// Focused, the form is never swapped by live refresh (every second
	// here); before that, a refresh may replace the node between finding
	// and setting it.
	pauseFor := chromedp.CSS(`[data-testid=pause-for]`)
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if _, err := chromedp.Run(b.Ctx, chromedp.Focus(pauseFor)); err != nil {
			return err
		}
		_, err := chromedp.Run(b.Ctx, chromedp.SetValue(pauseFor, "4h"))
		return err
	})
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
	// The page refreshes its regions every second, and a region swapped
	// between finding a node and acting on it fails the action: each is
	// tried again until it finds the node in place. A click that failed
	// dispatched nothing, so trying it again clicks once.
	again := func(act func() error) {
		t.Helper()
		natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, act)
	}
	var note, lag string
	again(func() (err error) {
		note, err = chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=paused-until]`)))
		return err
	})
	require.Contains(t, note, "Paused until")
	again(func() (err error) {
		lag, err = chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=consumer-lag] [data-testid=lag-state]`)))
		return err
	})
	require.Equal(t, "paused", strings.TrimSpace(lag))

	again(func() error {
		_, err := chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=consumer-resume]`)))
		return err
	})
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if p, _ := paused(); p {
			return fmt.Errorf("still paused")
		}
		return nil
	})
	require.Empty(t, b.Errors(), "console errors (CSP violations included) on jetwatch's pages")
}
