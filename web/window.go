package web

import (
	"fmt"
	"strings"
	"time"
)

// windows are the history windows the pages offer.
var windows = []string{"1h", "24h", "7d"}

// maxWindow is the longest history kept by default.
const maxWindow = 30 * 24 * time.Hour

// chartPoints is how many points a chart shows at most.
const chartPoints = 240

// parseWindow accepts 1h, 24h, 7d (days are not Go durations) or any Go
// duration up to 30 days.
func parseWindow(s string) (time.Duration, error) {
	if s == "" {
		return time.Hour, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || fmt.Sprint(n) != days {
			return 0, fmt.Errorf("history window %q: use 1h, 24h, 7d or a duration like 90m", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("history window %q: use 1h, 24h, 7d or a duration like 90m", s)
		}
	}
	if d <= 0 || d > maxWindow {
		return 0, fmt.Errorf("history window %q: must be between 1s and 30d", s)
	}
	return d, nil
}
