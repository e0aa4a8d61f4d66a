package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// windows are the history windows the pages link to.
var windows = []string{"1h", "24h", "7d"}

// defaultWindow is the history window of a page without ?window=.
const (
	defaultWindow     = time.Hour
	defaultWindowName = "1h"
)

// maxWindow is the longest history kept by default.
const maxWindow = 30 * 24 * time.Hour

// chartPoints is how many points a chart shows at most; more would be
// finer than the pixels of the chart.
const chartPoints = 240

// sparkPoints is how many points a sparkline shows at most.
const sparkPoints = 60

// parseWindow accepts 1h, 24h, 7d (days are not Go durations) or any Go
// duration up to 30 days. Its errors are meant for the client.
func parseWindow(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || strconv.Itoa(n) != days || n < 0 || n > int(maxWindow/(24*time.Hour)) {
			return 0, fmt.Errorf("history window %s: use 1h, 24h, 7d or a duration like 90m, at most 30d", shortQuote(s))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("history window %s: use 1h, 24h, 7d or a duration like 90m", shortQuote(s))
		}
	}
	if d < time.Second || d > maxWindow {
		return 0, fmt.Errorf("history window %s: must be between 1s and 30d", shortQuote(s))
	}
	return d, nil
}

// pageWindow is the window a page asked for with ?window=, 1h by default.
func pageWindow(q string) (name string, d time.Duration, err error) {
	if q == "" {
		return defaultWindowName, defaultWindow, nil
	}
	d, err = parseWindow(q)
	return q, d, err
}
