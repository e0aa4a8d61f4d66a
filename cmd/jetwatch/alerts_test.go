package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

func TestBadRulesFileAtStartIsAClearExit(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	file := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(file, []byte("receivers: []\nrules:\n  - name: x\n    kind: consumer_lagg\n    receivers: [ops]\n"), 0o600))
	err := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--server", srv.ClientURL(),
		"--rules", file, "--log-level", "error"}, func(string) string { return "" }, io.Discard)
	require.ErrorContains(t, err, file+`:4: rule "x": field kind: "consumer_lagg" is not one of`)
	require.ErrorContains(t, err, file+`:5: rule "x": field receivers: no receiver named "ops"`)
}

func TestRulesReloadKeepsOldRulesWhenTheNewFileIsBad(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "rules.yaml")
	good := "receivers: [{name: ops, url: 'http://127.0.0.1:9/hook'}]\nrules:\n  - {name: a, kind: stream_limit, above: 90, receivers: [ops]}\n"
	require.NoError(t, os.WriteFile(file, []byte(good), 0o600))
	rf, err := loadRules(file, func(string) string { return "" }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte("rules: [{name: a, kind: nope}]\n"), 0o600))
	rf.reload("test")
	require.Equal(t, "a", rf.current().Rules[0].Name, "a bad file keeps the old rules")
	require.Equal(t, "stream_limit", rf.current().Rules[0].Kind)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(good, "name: a", "name: b", 1)), 0o600))
	rf.reload("test")
	require.Equal(t, "b", rf.current().Rules[0].Name)

	// A change of the file is picked up on its own.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rf.watch(ctx)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(good, "name: a", "name: c", 1)), 0o600))
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(file, later, later))
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if name := rf.current().Rules[0].Name; name != "c" {
			return fmt.Errorf("rules still %s", name)
		}
		return nil
	})
}

// TestDemoAlertsArriveSignedAtTheDemoReceiver runs the demo and waits for
// its rules to fire and its receiver to get and verify a notification.
func TestDemoAlertsArriveSignedAtTheDemoReceiver(t *testing.T) {
	base := startDemo(t)
	natstest.CheckFor(t, 90*time.Second, 500*time.Millisecond, func() error {
		var alerts struct {
			Items []struct{ Rule, State string }
		}
		getJSON(t, base+"/api/v1/alerts", &alerts)
		for _, a := range alerts.Items {
			if a.Rule == "sensors-nearly-full" && a.State == "firing" {
				return nil
			}
		}
		return fmt.Errorf("sensors-nearly-full not firing yet: %+v", alerts.Items)
	})
	natstest.CheckFor(t, 30*time.Second, 500*time.Millisecond, func() error {
		resp, err := http.Get(base + "/demo/receiver")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		page := string(body)
		if !strings.Contains(page, "sensors-nearly-full") || !strings.Contains(page, ">verified<") {
			return fmt.Errorf("no verified sensors-nearly-full arrival yet")
		}
		if strings.Contains(page, "does not match") {
			return fmt.Errorf("an arrival failed verification:\n%s", page)
		}
		return nil
	})
	var log struct {
		Items []struct{ Rule, Result string }
	}
	getJSON(t, base+"/api/v1/notifications", &log)
	delivered := false
	for _, d := range log.Items {
		delivered = delivered || (d.Rule == "sensors-nearly-full" && d.Result == "delivered")
	}
	require.True(t, delivered, "the delivery log shows it: %+v", log.Items)

	// In a browser: the rule shows firing, an operator silences it with
	// the form (CSRF token and all), and no page breaks the CSP.
	b := browsertest.New(t)
	rule := `[data-testid=alert-rule][data-rule=sensors-nearly-full]`
	_, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+"/alerts"))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(rule+`[data-state=firing]`)))
	require.NoError(t, err)
	// Focused, the form is never swapped by live refresh; before that, a
	// refresh may replace the node between finding and filling it.
	why := chromedp.CSS(rule + ` [data-testid=alert-instance] input[name=why]`)
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if _, err := chromedp.Run(b.Ctx, chromedp.Focus(why)); err != nil {
			return err
		}
		_, err := chromedp.Run(b.Ctx, chromedp.SetValue(why, "resizing SENSORS"))
		return err
	})
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(rule+` [data-testid=alert-instance] [data-testid=alert-silence-submit]`)))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)))
	require.NoError(t, err)
	silenced, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=silences]`)))
	require.NoError(t, err)
	require.Contains(t, silenced, "resizing SENSORS")
	require.Contains(t, silenced, "anonymous@")
	for _, page := range []string{"/alerts/notifications", "/demo/receiver"} {
		_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+page))
		require.NoError(t, err)
		_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`main`)))
		require.NoError(t, err)
	}
	require.Empty(t, b.Errors(), "console errors (CSP violations included) on the alert pages")
}
