package views

import (
	"net/url"
	"strconv"

	"github.com/jetwatch/jetwatch/store"
)

// EventList is the advisory timeline page.
type EventList struct {
	Filter store.EventFilter
	Events []store.Event
	Next   string
	// ShowOwn is set when events about jetwatch's own streams and
	// consumers are listed too (?own=1).
	ShowOwn bool
	// Page is when the page was rendered, for relative times.
	Page Page
}

// EventsURL is the timeline with a filter, jetwatch's own events shown or
// not, from the newest (before = 0) or before an event id.
func EventsURL(f store.EventFilter, own bool, before uint64) string {
	q := url.Values{}
	for k, v := range map[string]string{"stream": f.Stream, "consumer": f.Consumer, "kind": f.Kind, "severity": f.Severity} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if own {
		q.Set("own", "1")
	}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if len(q) == 0 {
		return "/events"
	}
	return "/events?" + q.Encode()
}

// eventLevel is an event severity's badge: info is neutral blue, never
// ok's green.
func eventLevel(severity string) string {
	switch severity {
	case store.SeverityCritical:
		return store.HealthCritical
	case store.SeverityWarning:
		return store.HealthWarning
	}
	return "info"
}
