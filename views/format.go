package views

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Count renders a count compactly: 950, 12.3k, 4.5M.
func Count[T ~int | ~int64 | ~uint64 | ~float64](v T) string {
	f := float64(v)
	switch a := math.Abs(f); {
	case a >= 1e9:
		return trim(f/1e9) + "G"
	case a >= 1e6:
		return trim(f/1e6) + "M"
	case a >= 1e4:
		return trim(f/1e3) + "k"
	}
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// Exact renders an integer in full, for title attributes.
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

// Rate renders a per-second rate.
func Rate(v float64) string {
	if v == 0 {
		return "0/s"
	}
	if v < 0.1 {
		return "<0.1/s"
	}
	return Count(v) + "/s"
}

// Pct renders a percentage.
func Pct(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" }

// Seconds renders a duration given in seconds like Go does: 30s, 1m30s.
func Seconds(s float64) string {
	if s == 0 {
		return "—"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// Limit renders a limit where -1 or 0 means unlimited.
func Limit[T ~int | ~int32 | ~int64](v T) string {
	if v <= 0 {
		return "unlimited"
	}
	return Exact(int64(v))
}

// Ago renders how long before now t was: "12s ago", "3m ago", "2h ago".
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d ago"
}

// Duration renders a duration rounded for reading.
func Duration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// UTC renders an absolute time for title attributes and datetime values.
func UTC(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
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
