package views

import (
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// LagLabel is a lag state in the operator's words, for badges.
func LagLabel(state string) string {
	switch state {
	case store.LagFallingBehind:
		return "falling behind"
	case "":
		return "not judged"
	}
	return state
}

// LagMeaning says what a lag state means, for badge titles and the
// consumer page.
func LagMeaning(state string) string {
	switch state {
	case store.LagOK:
		return "ok: keeping up, or nothing to do"
	case store.LagDraining:
		return "draining: pending is falling, it is catching up"
	case store.LagFallingBehind:
		return "falling behind: pending is rising, messages arrive faster than they are acknowledged"
	case store.LagStalled:
		return "stalled: messages wait and nothing is acknowledged, although someone is consuming"
	case store.LagStopped:
		return "stopped: messages wait and nobody is consuming (no pull requests, no subscriber), or deleted"
	case store.LagPaused:
		return "paused: an operator paused it on the server until a time; nothing is delivered meanwhile, so pending grows, as expected"
	}
	return "not judged yet: the next samples will tell"
}

// LagLevel is the health level a consumer's lag state shows as: a
// paused or deleted consumer is stopped on purpose, a warning.
func LagLevel(c store.Consumer) string {
	switch c.LagState {
	case store.LagFallingBehind:
		return store.HealthWarning
	case store.LagStalled:
		return store.HealthCritical
	case store.LagPaused:
		return store.HealthWarning
	case store.LagStopped:
		if c.Paused || c.DeletedAt != nil {
			return store.HealthWarning
		}
		return store.HealthCritical
	}
	return store.HealthOK
}

// DrainTime is a consumer's estimated time to drain, or "" when it is not
// draining.
func DrainTime(c store.Consumer) string {
	if c.DrainSeconds == nil {
		return ""
	}
	return Duration(time.Duration(*c.DrainSeconds * float64(time.Second)))
}

// LagWindow is the time the lag was judged over, or "" with fewer than
// two samples.
func LagWindow(c store.Consumer) string {
	if c.LagWindowSeconds <= 0 {
		return ""
	}
	return Duration(time.Duration(c.LagWindowSeconds * float64(time.Second)))
}
