package views

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/internal/human"
)

// jetwatch shows numbers one way everywhere: in full, grouped in threes by
// a narrow no-break space (4 169, 1 250 000), so an operator comparing two
// readings of a lag sees every message, and a number never wraps inside a
// narrow table cell. Sizes are the exception: binary units, the exact byte
// count in the title.

// groupSep separates thousands: U+202F NARROW NO-BREAK SPACE, the thin
// space that does not break.
const groupSep = "\u202f"

// Count renders a count in full, grouped: 950, 12 345, 4 500 000. A
// fractional value keeps one decimal below 100 and is rounded above.
func Count[T ~int | ~int64 | ~uint64 | ~float64](v T) string {
	f := float64(v)
	if f != math.Trunc(f) && math.Abs(f) < 100 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	if f == 0 {
		return "0"
	}
	// Counts beyond 2^53 lose their last digits here: no stream holds
	// that many messages.
	return group(strconv.FormatFloat(math.Round(f), 'f', 0, 64))
}

// group puts groupSep between each three digits of an integer's text.
func group(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	b.WriteString(sign)
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if i > 0 {
			b.WriteString(groupSep)
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// Exact renders an integer as plain digits, for title attributes and
// machine-readable values (data-value).
func Exact[T ~int | ~int64 | ~uint64](v T) string { return fmt.Sprint(v) }

// Bytes renders a size in binary units.
func Bytes[T ~int64 | ~uint64 | ~float64](v T) string {
	f := float64(v)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(f, 'f', 0, 64) + " B"
	}
	return trim(f) + " " + units[i]
}

// Rate renders a per-second rate, like Count.
func Rate(v float64) string {
	if v == 0 {
		return "0/s"
	}
	if v < 0.1 {
		return "<0.1/s"
	}
	return Count(v) + "/s"
}

// PerMinute renders a per-minute rate, like Rate.
func PerMinute(v float64) string {
	if v > 0 && v < 0.1 {
		return "<0.1/min"
	}
	return Count(v) + "/min"
}

// Pct renders a percentage.
func Pct(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" }

// Seconds renders a duration given in seconds like Duration, "—" for 0.
func Seconds(s float64) string {
	if s == 0 {
		return "—"
	}
	return Duration(time.Duration(s * float64(time.Second)))
}

// Limit renders a limit where -1 or 0 means unlimited.
func Limit[T ~int | ~int32 | ~int64](v T) string {
	if v <= 0 {
		return "unlimited"
	}
	return Count(int64(v))
}

// Ago renders how long before now t was: "12s ago", "3m ago", "2h ago",
// and a time after now as "in 3m".
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		if d > -time.Second {
			return "0s ago"
		}
		return "in " + coarse(-d)
	}
	return coarse(d) + " ago"
}

// coarse is a duration in its largest unit only, as relative times read.
func coarse(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// Duration renders a duration for people, in its two largest units:
// 350ms, 1.5s, 42s, 5m 20s, 24h → 1d, 1d 6h, 7d. Never Go's "24h0m0s".
func Duration(d time.Duration) string { return human.Duration(d) }

// UTC renders an absolute time in RFC 3339 UTC, for datetime attributes
// and the API's words.
func UTC(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Absolute renders a time for people, with its zone named: "2026-11-26
// 12:00:05 UTC". Pages show it on hover over a relative time (When);
// static/app.js rewrites it to the browser's zone unless the operator
// chose UTC.
func Absolute(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func trim(f float64) string {
	s := strconv.FormatFloat(f, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// LimitBytes renders a size limit where -1 or 0 means unlimited.
func LimitBytes[T ~int32 | ~int64](v T) string {
	if v <= 0 {
		return "unlimited"
	}
	return Bytes(int64(v))
}

// nowKey carries the time a page is rendered at in its context, for At.
type nowKey struct{}

// WithNow returns ctx carrying now, the time relative times on a page
// count from (web's render sets it from its clock).
func WithNow(ctx context.Context, now time.Time) context.Context {
	return context.WithValue(ctx, nowKey{}, now)
}

// nowOf is the time WithNow put in ctx, or the clock's.
func nowOf(ctx context.Context) time.Time {
	if now, ok := ctx.Value(nowKey{}).(time.Time); ok {
		return now
	}
	return time.Now()
}
