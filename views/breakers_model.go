package views

import (
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// BreakerList is the breakers page.
type BreakerList struct {
	Breakers    []store.Breaker
	Transitions []store.BreakerTransition
	Now         time.Time
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
