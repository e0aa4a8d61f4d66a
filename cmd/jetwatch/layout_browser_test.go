package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// overflowJS says what makes the page wider than the window: the page's
// width and the window's, and the elements that stick out, outside the
// containers that scroll on purpose.
// A phone's browser zooms out to fit a page wider than the screen, so the
// window's width is compared with the screen's (%d) too.
const overflowJS = `((screen) => {
	const w = window.innerWidth, sw = document.documentElement.scrollWidth;
	const out = [];
	if (sw > screen || w > screen) {
		for (const el of document.body.querySelectorAll("*")) {
			const r = el.getBoundingClientRect();
			if (r.right > screen + 0.5 && !el.closest(".scroll, table.card, .card > table, pre, svg")) {
				out.push(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).replace(/ /g, ".") : "") +
					(el.dataset.testid ? "[" + el.dataset.testid + "]" : "") + " right=" + Math.round(r.right));
				if (out.length >= 5) break;
			}
		}
	}
	return {width: w, scrollWidth: sw, culprits: out};
})(%d)`

type overflow struct {
	Width       float64  `json:"width"`
	ScrollWidth float64  `json:"scrollWidth"`
	Culprits    []string `json:"culprits"`
}

// TestDemoLayoutAtDesktopAndPhoneWidths drives the demo at 1440 px and at
// 390 px (a phone): no page scrolls sideways (wide tables scroll inside
// their card), the navigation folds into a menu on the phone, and what is
// wrong now leads the overview: the consumer falling behind
// (ORDERS/shipping) and the stopped one (AUDIT/archiver, never pulled).
func TestDemoLayoutAtDesktopAndPhoneWidths(t *testing.T) {
	b := browsertest.New(t)
	base := startDemo(t)

	// The triage lists both once the samples show them: shipping's
	// backlog must rise over the lag window, archiver wait for --stall-after.
	_, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+"/"))
	require.NoError(t, err)
	natstest.CheckFor(t, 90*time.Second, 200*time.Millisecond, func() error {
		for _, sel := range []string{problemSelector("falling-behind", "ORDERS / shipping"), problemSelector("stopped", "AUDIT / archiver")} {
			if !pageHas(t, b, sel) {
				return fmt.Errorf("not in what is wrong now yet: %s\n%s", sel, liveText(t, b, `[data-testid=triage]`))
			}
		}
		return nil
	})
	// Each problem links to its consumer's page (read in one step: the
	// live region is swapped every second).
	for subject, want := range map[string]string{
		problemSelector("stopped", "AUDIT / archiver"):         "/streams/AUDIT/consumers/archiver",
		problemSelector("falling-behind", "ORDERS / shipping"): "/streams/ORDERS/consumers/shipping",
	} {
		href, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
			`(document.querySelector(`+strconv.Quote(subject+" a")+`) || {getAttribute: () => ""}).getAttribute("href") || ""`))
		require.NoError(t, err)
		require.Equal(t, want, href, subject)
	}

	// A dead letter's page, reached as an operator would.
	var deadLetter string
	natstest.CheckFor(t, 60*time.Second, 500*time.Millisecond, func() error {
		if _, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+"/dead-letters")); err != nil {
			return err
		}
		v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
			`(document.querySelector("[data-testid=dl-link]") || {getAttribute: () => ""}).getAttribute("href") || ""`))
		if err != nil {
			return err
		}
		if v == "" {
			return fmt.Errorf("no dead letter yet")
		}
		deadLetter = v
		return nil
	})

	pages := []string{"/", "/?own=1", "/?sort=name&page=1", "/streams/ORDERS", "/streams/ORDERS/consumers/shipping",
		"/streams/ORDERS/consumers/notifier", "/streams/ORDERS/messages?around=5&limit=10", "/streams/TELEMETRY/messages?limit=5", "/dead-letters", "/dead-letters/groups", deadLetter, "/events", "/breakers",
		"/alerts", "/alerts/notifications", "/audit", "/redeliveries"}
	for _, width := range []int64{1440, 390} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if width < 500 {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		_, err := chromedp.Run(b.Ctx, chromedp.EmulateViewport(width, 900, opts...))
		require.NoError(t, err)
		var wide []string
		for _, page := range pages {
			_, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+page))
			require.NoError(t, err, page)
			o, err := chromedp.Run(b.Ctx, chromedp.Evaluate[overflow](fmt.Sprintf(overflowJS, width)))
			require.NoError(t, err, page)
			if dir := os.Getenv("JETWATCH_LAYOUT_SHOTS"); dir != "" {
				// For a person to look at: every page at each width.
				shot, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
				require.NoError(t, err)
				name := fmt.Sprintf("%d%s.png", width, strings.NewReplacer("/", "_", "?", "_", "&", "_", "=", "_").Replace(page))
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), shot, 0o644))
			}
			if o.Width != float64(width) || o.ScrollWidth > o.Width {
				wide = append(wide, fmt.Sprintf("%s is %.0f px wide in a %.0f px window: %s", page, o.ScrollWidth, o.Width,
					strings.Join(o.Culprits, ", ")))
			}
		}
		require.Empty(t, wide, "at %d px no page scrolls sideways", width)

		// The navigation: a row of links on a desktop, a menu on a phone.
		_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+"/"))
		require.NoError(t, err)
		navShown, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector("[data-testid=nav]")).display !== "none"`))
		require.NoError(t, err)
		if width > 500 {
			require.True(t, navShown, "the navigation is shown at %d px", width)
			continue
		}
		require.False(t, navShown, "the navigation folds away on a phone")
		_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=nav-toggle]`)))
		require.NoError(t, err)
		_, err = chromedp.Run(b.Ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=nav-dead-letters]`)))
		require.NoError(t, err, "the menu opens the navigation")
		_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=nav-dead-letters]`)))
		require.NoError(t, err)
		require.NoError(t, waitForPage(b.Ctx, "/dead-letters"))

		// The streams table scrolls inside its card, not the page.
		_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+"/"))
		require.NoError(t, err)
		scrolls, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](
			`getComputedStyle(document.querySelector("[data-testid=streams]").parentElement).overflowX === "auto"`))
		require.NoError(t, err)
		require.True(t, scrolls, "the stream table scrolls in its card when wider than a phone")
	}
	_, err = chromedp.Run(b.Ctx, chromedp.EmulateReset())
	require.NoError(t, err)

	// Times: relative, the absolute time with its zone on hover. The
	// browser is put in Tokyo: the script shows its zone, and the toggle
	// switches to UTC, also for what the live refresh swaps in.
	require.NoError(t, chromedp.Do(b.Ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})
		return err
	})))
	_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+"/"))
	require.NoError(t, err)
	lastSample := func() string {
		title, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
			`(document.querySelector("[data-testid=last-sample] time") || {title: ""}).title`))
		require.NoError(t, err)
		return title
	}
	natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if title := lastSample(); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+9$`).MatchString(title) {
			return fmt.Errorf("last sample's title %q is not in Tokyo's time", title)
		}
		return nil
	})
	require.Contains(t, liveText(t, b, `[data-testid=time-zone]`), "Times in your zone (GMT+9)")
	_, err = chromedp.Run(b.Ctx, chromedp.Click(chromedp.CSS(`[data-testid=time-zone-toggle]`)))
	require.NoError(t, err)
	require.Contains(t, liveText(t, b, `[data-testid=time-zone]`), "Times in UTC")
	// Across two live refreshes the titles stay in UTC.
	refreshes := func() int {
		n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](
			`performance.getEntriesByType("resource").filter(e => e.name.includes("fragment=live")).length`))
		require.NoError(t, err)
		return n
	}
	start := refreshes()
	natstest.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		title := lastSample()
		require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`, title, "after the toggle, times are in UTC")
		if n := refreshes(); n < start+2 {
			return fmt.Errorf("%d live refreshes since the toggle", n-start)
		}
		return nil
	})

	require.Empty(t, b.Errors(), "console errors (CSP violations included) on jetwatch's pages")
}
