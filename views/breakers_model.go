package views

import (
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// BreakerList is the breakers page.
type BreakerList struct {
	Breakers    []store.Breaker
	Transitions []store.BreakerTransition
	Timeline    BreakerTimeline
	// Window is the timeline's window as asked (1h by default), Windows
	// the ones offered.
	Window  string
	Windows []string
	Now     time.Time
}

func breakerLevel(state string) string {
	switch state {
	case store.BreakerOpen:
		return store.HealthCritical
	case store.BreakerHalfOpen:
		return store.HealthWarning
	}
	return store.HealthOK
}

// breakerSince says what a breaker's since is: the start of its outage
// while it is not closed, when it closed otherwise.
func breakerSince(b store.Breaker) string {
	switch b.State {
	case store.BreakerOpen, store.BreakerHalfOpen:
		s := "down since " + Absolute(b.Since) + " (first open)"
		if b.StateSince.After(b.Since) {
			s += "; " + b.State + " since " + Absolute(b.StateSince)
		}
		return s
	}
	return b.State + " since " + Absolute(b.Since)
}

// instant is a time with its milliseconds, for data attributes.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
