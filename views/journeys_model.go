package views

import (
	"net/url"
	"time"

	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/store"
)

// JourneyPage is the journey of one key: its steps in time order.
type JourneyPage struct {
	Key string
	J   journey.Journey
	// Enabled says journeys are indexed (--journey-streams is set).
	Enabled bool
	// Streams and Correlations say what is indexed, for the hint.
	Streams      string
	Correlations string
	// TraceLinks are the journey's trace ids with their link to the
	// tracing UI ("" without --trace-url).
	TraceLinks []TraceLink
}

// TraceLink is a trace id and its link to the tracing UI.
type TraceLink struct {
	ID  string
	URL string
}

// StuckPage lists the stuck journeys of each saga_stuck rule.
type StuckPage struct {
	Enabled bool
	Sagas   []StuckSaga
	Now     time.Time
}

// StuckSaga is one saga_stuck rule and its stuck journeys.
type StuckSaga struct {
	Rule, Key, Start string
	End              []string
	Within           time.Duration
	Stuck            []store.StuckJourney
	// More says more are stuck than are listed.
	More bool
}

// JourneyURL is the path of a key's journey page: /journeys/KEY, or
// /journeys/key/KEY for a key that is a page of its own under /journeys
// ("stuck").
func JourneyURL(key string) string {
	if key == "stuck" || key == "key" {
		return "/journeys/key/" + url.PathEscape(key)
	}
	return "/journeys/" + url.PathEscape(key)
}

// stepLevel is the badge colour of a step.
func stepLevel(s journey.Step) string {
	switch s.Kind {
	case journey.StepDeadLetter:
		return store.HealthCritical
	case journey.StepBreaker:
		return breakerLevel(s.To)
	case journey.StepAction:
		return store.HealthWarning
	}
	return store.HealthOK
}

// stepKind is a step's kind in the operator's words.
func stepKind(s journey.Step) string {
	switch s.Kind {
	case journey.StepDeadLetter:
		return "dead letter"
	case journey.StepAction:
		if s.Action == "redeliver" {
			return "redelivery"
		}
		return s.Action
	case journey.StepBreaker:
		return "breaker"
	}
	return "message"
}
