package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// syncBuffer is an io.Writer safe to read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	dashboardLine = regexp.MustCompile(`dashboard: (http://\S+)/`)
	natsLine      = regexp.MustCompile(`nats:\s+(nats://\S+)`)
)

// startDemo runs `jetwatch demo` in-process on free ports and returns the
// dashboard's base URL once it is ready.
func startDemo(t *testing.T) string {
	base, _ := startDemoWithNATS(t)
	return base
}

// startDemoWithNATS is startDemo that also returns the demo's NATS URL.
func startDemoWithNATS(t *testing.T) (string, string) {
	base, natsURL, _ := startDemoWithEnv(t, func(string) string { return "" })
	return base, natsURL
}

// startDemoWithEnv is startDemoWithNATS with an environment and more
// arguments; it also returns what the demo writes.
func startDemoWithEnv(t *testing.T, env func(string) string, args ...string) (string, string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	// Made before the shutdown below is registered, so it is removed after
	// the demo stopped writing to it (cleanups run last first).
	data := t.TempDir()
	go func() {
		done <- run(ctx, append([]string{"demo", "--data", data, "--listen", "127.0.0.1:0", "--nats-port", "0",
			"--sample-interval", "1s", "--stall-after", "3s", "--log-level", "warn"}, args...), env, out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "demo shut down with an error")
		case <-time.After(30 * time.Second):
			t.Error("demo did not shut down within 30s of Ctrl-C")
		}
	})
	var base string
	natstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		select {
		case err := <-done:
			return fmt.Errorf("demo exited early: %v\n%s", err, out.String())
		default:
		}
		m := dashboardLine.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("no dashboard URL printed yet:\n%s", out.String())
		}
		base = m[1]
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
	m := natsLine.FindStringSubmatch(out.String())
	require.NotNil(t, m, "the demo prints its NATS URL")
	return base, m[1], out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

type apiConsumer struct {
	Name       string `json:"name"`
	NumPending uint64 `json:"num_pending"`
	Stalled    bool   `json:"stalled"`
}

func TestDemoInBrowser(t *testing.T) {
	b := browsertest.New(t)
	base := startDemo(t)

	// The workload makes shipping lag and archiver stall; wait until the
	// samples show both.
	natstest.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		var orders, audit struct{ Items []apiConsumer }
		getJSON(t, base+"/api/v1/streams/ORDERS/consumers", &orders)
		getJSON(t, base+"/api/v1/streams/AUDIT/consumers", &audit)
		for _, c := range orders.Items {
			if c.Name == "shipping" && c.NumPending > 0 {
				for _, a := range audit.Items {
					if a.Name == "archiver" && a.Stalled {
						return nil
					}
				}
				return fmt.Errorf("archiver not stalled yet: %+v", audit.Items)
			}
		}
		return fmt.Errorf("shipping has no lag yet: %+v", orders.Items)
	})

	// jetwatch's own streams are listed only when asked for.
	_, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+"/?own=1"))
	require.NoError(t, err)
	for _, stream := range []string{"DLQ", "JETWATCH_ADVISORIES"} {
		_, err := chromedp.Run(b.Ctx, chromedp.WaitReady(chromedp.CSS(`[data-testid=stream-row][data-stream=`+stream+`]`)))
		require.NoError(t, err, "overview with own=1 lists stream %s", stream)
	}

	// The overview lists every demo stream, with badges and the legend.
	_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+"/"))
	require.NoError(t, err)
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=streams]`)))
	require.NoError(t, err)
	for _, stream := range []string{"ORDERS", "PAYMENTS", "AUDIT", "SENSORS", "TELEMETRY"} {
		_, err := chromedp.Run(b.Ctx, chromedp.WaitReady(chromedp.CSS(`[data-testid=stream-row][data-stream=`+stream+`]`)))
		require.NoError(t, err, "overview lists stream %s", stream)
	}
	require.NotContains(t, liveText(t, b, `[data-testid=streams]`), "JETWATCH_ADVISORIES", "jetwatch's own streams are left out unless asked for")
	require.Contains(t, strings.ToLower(liveText(t, b, `[data-testid=health-legend]`)), "act now")
	// The page shows the sample of its moment: on a loaded machine one may
	// land between the API's answer above and this read.
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		if !pageHas(t, b, problemSelector("stopped", "AUDIT / archiver")) {
			return fmt.Errorf("what is wrong now lacks the stopped AUDIT / archiver (never pulled): %s", liveText(t, b, `[data-testid=triage]`))
		}
		return nil
	})
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		level, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
			`(document.querySelector("[data-stream=SENSORS] [data-testid=health-badge]") || {getAttribute: () => ""}).getAttribute("data-level")`))
		if err != nil || level != "critical" {
			return fmt.Errorf("SENSORS health %q (%v), want critical", level, err)
		}
		return nil
	})

	// The README's screenshot: a desktop window, once what is wrong now
	// shows shipping falling behind too.
	_, err = chromedp.Run(b.Ctx, chromedp.EmulateViewport(1440, 900))
	require.NoError(t, err)
	natstest.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		if !pageHas(t, b, problemSelector("falling-behind", "ORDERS / shipping")) {
			return fmt.Errorf("shipping not listed as falling behind yet: %s", liveText(t, b, `[data-testid=triage]`))
		}
		return nil
	})
	shot, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NotEmpty(t, shot)
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "overview.png"), shot, 0o600))
	if os.Getenv("JETWATCH_UPDATE_SCREENSHOT") != "" {
		require.NoError(t, os.WriteFile("../../docs/overview.png", shot, 0o644))
	}
	_, err = chromedp.Run(b.Ctx, chromedp.EmulateReset())
	require.NoError(t, err)

	// The lag on the consumer page equals the API's. Samples arrive every
	// second, so compare against API reads before and after the page read
	// and retry until they agree.
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		var before, after apiConsumer
		getJSON(t, base+"/api/v1/streams/ORDERS/consumers/shipping", &before)
		if _, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+"/streams/ORDERS/consumers/shipping")); err != nil {
			return err
		}
		text, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`[data-testid=consumer-pending]`)))
		if err != nil {
			return err
		}
		getJSON(t, base+"/api/v1/streams/ORDERS/consumers/shipping", &after)
		// In full, grouped by narrow no-break spaces: 4 169.
		shown, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimSpace(text), "\u202f", ""), 10, 64)
		if err != nil {
			return fmt.Errorf("consumer page shows %q: %w", text, err)
		}
		if before.NumPending != after.NumPending {
			return fmt.Errorf("a sample landed during the read (%d -> %d)", before.NumPending, after.NumPending)
		}
		if shown != after.NumPending {
			return fmt.Errorf("page shows %d pending, API says %d", shown, after.NumPending)
		}
		return nil
	})
	chart, err := chromedp.Run(b.Ctx, chromedp.Nodes(chromedp.CSSAll(`[data-testid=chart-pending] polyline`)))
	require.NoError(t, err)
	require.Len(t, chart, 3, "pending, ack pending and redelivered lines")

	// Live refresh fetches the fragment and swaps it in without errors.
	natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		refreshed, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](
			`performance.getEntriesByType("resource").some(e => e.name.includes("fragment=live"))`))
		if err != nil {
			return err
		}
		if !refreshed {
			return fmt.Errorf("no live refresh yet")
		}
		return nil
	})
	_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`#live [data-testid=consumer-pending]`)))
	require.NoError(t, err)
	hidden, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.querySelector("[data-testid=live-status]").hidden`))
	require.NoError(t, err)
	require.True(t, hidden, "the live refresh failure indicator stays hidden")

	require.Empty(t, b.Errors(), "console errors (CSP violations included) on jetwatch's pages")
}

// problemSelector matches one problem of kind on subject ("ORDERS /
// shipping") in the overview's what is wrong now.
func problemSelector(kind, subject string) string {
	return fmt.Sprintf(`[data-testid=triage] [data-testid=problem][data-kind=%q][data-subject=%q]`, kind, subject)
}

// pageHas says whether an element matches sel on the page now, in one step.
func pageHas(t *testing.T, b *browsertest.Browser, sel string) bool {
	t.Helper()
	found, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`))
	require.NoError(t, err)
	return found
}

// liveText is the text of the element sel matches, read in one step: the
// page's live region is swapped every second, and a node found in one step
// may be gone in the next.
func liveText(t *testing.T, b *browsertest.Browser, sel string) string {
	t.Helper()
	var text string
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		got, err := chromedp.Run(b.Ctx, chromedp.Evaluate[*string](`(() => { const el = document.querySelector(`+strconv.Quote(sel)+`); return el ? el.innerText : null })()`))
		if err != nil {
			return err
		}
		if got == nil {
			return fmt.Errorf("no %s on the page", sel)
		}
		text = *got
		return nil
	})
	return text
}
