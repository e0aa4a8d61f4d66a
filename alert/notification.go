package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Notification states, as receivers see them.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Notification is one message to one receiver about one rule instance: the
// outbox holds these, and the json format sends them as they are.
type Notification struct {
	// ID is the idempotency key: the same for every attempt and every
	// replica that publishes the same transition.
	ID          string            `json:"id"`
	Receiver    string            `json:"receiver"`
	Rule        string            `json:"rule"`
	Kind        string            `json:"kind"`
	Severity    string            `json:"severity"`
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary"`
	Value       float64           `json:"value"`
	Fingerprint string            `json:"fingerprint"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      time.Time         `json:"ends_at,omitzero"`
	// Repeat counts reminders of a firing alert: 0 for the first message.
	Repeat    int       `json:"repeat,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// fingerprint identifies one instance of a rule: the rule name and the
// instance's labels, sorted.
func fingerprint(rule string, labels map[string]string) string {
	h := sha256.New()
	h.Write([]byte(rule))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(h, "\x00%s=%s", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// notificationID derives the idempotency key (and outbox Nats-Msg-Id) from
// what the notification is about, never from who publishes it, so two
// replicas publishing the same transition store one message.
func notificationID(receiver, fp, status string, startsAt time.Time, repeat int) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{receiver, fp, status,
		fmt.Sprint(startsAt.UnixMilli()), fmt.Sprint(repeat)}, "|")))
	return hex.EncodeToString(sum[:16])
}
