package views

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/demo/receiver"
)

// AlertList is the alerts page: each rule with its state, the silences in
// force and the receivers (never their secrets).
type AlertList struct {
	Rules     []alert.RuleStatus
	Receivers []alert.Receiver
	Silences  []alert.Silence
	Source    string
	// EvaluatedAt is when the rules were last evaluated; zero before the
	// first evaluation.
	EvaluatedAt time.Time
	CSRF        string
	Flash       string
	FlashBad    bool
	Now         time.Time
	// CanAct is set when the operator may acknowledge and silence.
	CanAct bool
}

// NotificationList is the delivery log page.
type NotificationList struct {
	Deliveries []alert.Delivery
	Now        time.Time
}

func alertLevel(state string) string {
	switch state {
	case alert.StateFiring:
		return "critical"
	case alert.StatePending:
		return "warning"
	}
	// Inactive is no news, good or bad: not ok's green.
	return "inactive"
}

func deliveryLevel(result string) string {
	switch result {
	case alert.ResultDelivered:
		return "ok"
	case alert.ResultRetrying:
		return "warning"
	}
	return "critical"
}

// Labels writes labels as k=v, sorted.
func Labels(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, " ")
}

// RuleCondition describes what a rule watches, in words.
func RuleCondition(r alert.Rule) string {
	var b strings.Builder
	b.WriteString(r.Kind)
	for _, f := range []struct{ k, v string }{{"stream", r.Stream}, {"consumer", r.Consumer}, {"subject", r.Subject},
		{"reason", r.Reason}, {"search", r.Search}, {"service", r.Service}, {"breaker", r.Breaker}, {"event", r.Event}} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.k, f.v)
		}
	}
	switch r.Kind {
	case alert.KindConsumerLag, alert.KindDeadLetterRate, alert.KindAdvisory:
		fmt.Fprintf(&b, " above %g", r.Above)
	case alert.KindStreamLimit:
		fmt.Fprintf(&b, " above %g%%", r.Above)
	case alert.KindSagaStuck:
		fmt.Fprintf(&b, " key=%s start=%s end=%s within %s", r.Key, r.Start, strings.Join(r.End, ","), Duration(time.Duration(r.Within)))
	}
	if r.Window > 0 {
		fmt.Fprintf(&b, " in %s", Duration(time.Duration(r.Window)))
	}
	if r.For > 0 {
		fmt.Fprintf(&b, " for %s", Duration(time.Duration(r.For)))
	}
	if k := r.KeepFiring(); k > 0 {
		fmt.Fprintf(&b, ", resolves once clear for %s", k)
	}
	if r.Repeat > 0 {
		fmt.Fprintf(&b, ", repeat every %s", Duration(time.Duration(r.Repeat)))
	}
	return b.String()
}

// DemoReceiverList is the demo receiver's page.
type DemoReceiverList struct {
	Arrivals []receiver.Arrival
	Now      time.Time
}

func arrivalLevel(status string) string {
	if status == alert.StatusResolved {
		return "ok"
	}
	return "critical"
}
