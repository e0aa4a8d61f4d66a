// Package receiver is the demo's webhook receiver, apart from the demo so
// that the pages showing its arrivals do not depend on the demo's embedded
// NATS server.
package receiver

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jetwatch/jetwatch/alert"
)

// Secret signs the demo's notifications to its own receiver; the demo's
// rules file names it.
const Secret = "demo-secret"

// Arrival is one webhook the demo receiver got.
type Arrival struct {
	At        time.Time
	Status    string
	Alerts    []string
	Key       string
	Signature string
	// Verified is empty when the signature checked out, else why not.
	Verified string
	Body     string
}

// Receiver is the demo's webhook receiver: it checks each request's
// signature as the README shows and keeps the latest arrivals, so a
// newcomer sees the whole loop on /demo/receiver.
type Receiver struct {
	mu       sync.Mutex
	arrivals []Arrival
}

// Receive records one webhook request; it answers 401 when the signature
// does not verify.
func (r *Receiver) Receive(req *http.Request) int {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return http.StatusBadRequest
	}
	a := Arrival{At: time.Now().UTC(), Key: req.Header.Get(alert.IdempotencyHeader),
		Signature: req.Header.Get(alert.SignatureHeader), Body: string(body)}
	if err := alert.Verify(Secret, a.Signature, body, a.At, 5*time.Minute); err != nil {
		a.Verified = err.Error()
	}
	var msg struct {
		Status string `json:"status"`
		Alerts []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(body, &msg); err == nil {
		a.Status = msg.Status
		for _, al := range msg.Alerts {
			a.Alerts = append(a.Alerts, describe(al.Labels))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.arrivals = append([]Arrival{a}, r.arrivals...)
	if len(r.arrivals) > 100 {
		r.arrivals = r.arrivals[:100]
	}
	if a.Verified != "" {
		return http.StatusUnauthorized
	}
	return http.StatusOK
}

// Arrivals returns what arrived, newest first.
func (r *Receiver) Arrivals() []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Arrival(nil), r.arrivals...)
}

// describe names an alert by its rule and the labels that tell its
// instances apart.
func describe(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		switch k {
		case "alertname", "kind", "severity":
		default:
			parts = append(parts, k+"="+labels[k])
		}
	}
	if len(parts) == 0 {
		return labels["alertname"]
	}
	return labels["alertname"] + " (" + strings.Join(parts, " ") + ")"
}
