package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq"
)

// bill charges an order; orders above 196 EUR fail every time (the card
// limit), so they reach MaxDeliver on a Limits stream.
func (w *Workload) bill(m jetstream.Msg) {
	var o struct {
		AmountCents int `json:"amount_cents"`
	}
	if json.Unmarshal(m.Data(), &o) == nil && o.AmountCents > 19600 {
		m.Nak() //nolint:errcheck // redelivered after AckWait anyway
		return
	}
	m.Ack() //nolint:errcheck // a lost ack is redelivered
}

// processPayment captures a payment on a WorkQueue stream: some fail until
// MaxDeliver, some are terminated without a copy (their payload is gone),
// and suspected fraud is dead-lettered by the service itself, with the
// error text, before the Term.
func (w *Workload) processPayment(m jetstream.Msg) {
	var p struct {
		ID string `json:"payment_id"`
	}
	if err := json.Unmarshal(m.Data(), &p); err != nil {
		m.TermWithReason("payload is not JSON") //nolint:errcheck // best effort
		return
	}
	n, _ := strconv.Atoi(p.ID[len(p.ID)-3:])
	switch {
	case n%40 == 7:
		w.deadLetter(m, fmt.Sprintf("fraud score 0.97 above threshold 0.90 for %s", p.ID))
	case n%30 == 11:
		m.TermWithReason("unsupported currency XTS") //nolint:errcheck // best effort
	case n%25 == 3:
		m.Nak() //nolint:errcheck // redelivered after AckWait anyway
	default:
		m.Ack() //nolint:errcheck // a lost ack is redelivered
		w.ship(m)
	}
}

// deadLetter is what a service does with a message it must give up on:
// copy it to the DLQ with the envelope, then Term. The Nats-Msg-Id matches
// the bridge's, so the copy the bridge makes from the terminated advisory
// is deduplicated.
func (w *Workload) deadLetter(m jetstream.Msg, errText string) {
	meta, err := m.Metadata()
	if err != nil {
		m.Nak() //nolint:errcheck // try again
		return
	}
	out := nats.NewMsg(dlq.Subject(meta.Stream, meta.Consumer))
	for k, v := range m.Headers() {
		out.Header[k] = v
	}
	out.Data = m.Data()
	dlq.Envelope{
		Stream: meta.Stream, Subject: m.Subject(), Sequence: meta.Sequence.Stream, Consumer: meta.Consumer,
		Deliveries: meta.NumDelivered, Reason: dlq.ReasonError, Error: errText, FailedAt: time.Now(),
		Service: "payments-fraud-check",
	}.Apply(out.Header)
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:%d:%s", meta.Stream, meta.Sequence.Stream, meta.Consumer))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(ctx, out); err != nil {
		m.Nak() //nolint:errcheck // keep the original until the copy is safe
		return
	}
	m.TermWithReason(errText) //nolint:errcheck // the copy is safe in the DLQ
}

// decodeFrame terminates frames that do not start with the magic byte.
func decodeFrame(m jetstream.Msg) {
	if d := m.Data(); len(d) == 0 || d[0] != 0xF7 {
		m.TermWithReason("corrupt frame: bad magic byte") //nolint:errcheck // best effort
		return
	}
	m.Ack() //nolint:errcheck // a lost ack is redelivered
}
