// Package human writes durations as people say them, for pages, health
// reasons and alert summaries alike, so one deployment never shows both
// "5m" and Go's "5m0s".
package human

import (
	"strconv"
	"time"
)

// Duration renders a duration for people, in its two largest units:
// 350ms, 1.5s, 42s, 5m 20s, 24h → 1d, 1d 6h, 7d. Never Go's "24h0m0s".
func Duration(d time.Duration) string {
	if d < 0 {
		return "-" + Duration(-d)
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10) + "ms"
	case d < 10*time.Second && d%time.Second != 0:
		return trim(d.Round(100*time.Millisecond).Seconds()) + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Round(time.Second).Seconds())) + "s"
	}
	type unit struct {
		d    time.Duration
		name string
	}
	units := []unit{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for i, u := range units {
		if d < u.d {
			continue
		}
		// Rounded to the second unit, so 1h 59m 59.9s reads 2h, and
		// 23h 59m 40s reads 1d.
		next := units[min(i+1, len(units)-1)].d
		if r := d.Round(next); i > 0 && r >= units[i-1].d {
			return Duration(r)
		}
		d = d.Round(next)
		big, rest := d/u.d, (d%u.d)/next
		out := strconv.FormatInt(int64(big), 10) + u.name
		if rest > 0 && i+1 < len(units) {
			out += " " + strconv.FormatInt(int64(rest), 10) + units[i+1].name
		}
		return out
	}
	return d.String()
}

// trim writes f with one decimal, dropping a trailing ".0".
func trim(f float64) string {
	s := strconv.FormatFloat(f, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}
