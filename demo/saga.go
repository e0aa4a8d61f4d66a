package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The order saga's subjects and its correlation header.
const (
	sagaStart     = "orders.placed"
	sagaShipped   = "orders.shipped"
	sagaCancelled = "orders.cancelled"
	orderHeader   = "X-Order-Id"
	// sagaRate is placed orders a second: about one in ten gets stuck (its
	// payment is dead-lettered), one a minute or so.
	sagaRate = 0.2
)

// placeOrders publishes orders.placed, each with its order id in a header
// and the payload and a trace of its own, at perSecond.
func (w *Workload) placeOrders(ctx context.Context, perSecond float64) {
	w.wg.Go(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / (perSecond * w.cfg.Speed)))
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			order := fmt.Sprintf("sg-%06d", i)
			m := nats.NewMsg(sagaStart)
			m.Header.Set(orderHeader, order)
			m.Header.Set("traceparent", "00-"+randomHex(16)+"-"+randomHex(8)+"-01")
			m.Data = fmt.Appendf(nil, `{"order_id":%q,"amount_cents":%d,"currency":"EUR"}`, order, 500+mrand.IntN(19000))
			w.publish(ctx, m)
		}
	})
}

// checkout is the saga's first service: it asks PAYMENTS to capture each
// placed order, or cancels one in twenty (out of stock).
func (w *Workload) checkout(m jetstream.Msg) {
	order := m.Headers().Get(orderHeader)
	var next *nats.Msg
	if n := orderNumber(order); n%20 == 13 {
		next = w.sagaStep(m, sagaCancelled, fmt.Appendf(nil, `{"order_id":%q,"why":"out of stock"}`, order))
	} else {
		// payment_id ends in the order's number: processPayment's fate for
		// it (captured, fraud, terminated, failing) follows from it.
		next = w.sagaStep(m, "payments.capture", fmt.Appendf(nil, `{"payment_id":"pay-s%06d","order_id":%q}`, n, order))
	}
	if !w.publish(context.Background(), next) {
		m.Nak() //nolint:errcheck // try again
		return
	}
	m.Ack() //nolint:errcheck // a lost ack is redelivered
}

// ship ends the saga of an order whose payment went through.
func (w *Workload) ship(payment jetstream.Msg) {
	order := payment.Headers().Get(orderHeader)
	if order == "" {
		return // not a saga payment
	}
	w.publish(context.Background(), w.sagaStep(payment, sagaShipped, fmt.Appendf(nil, `{"order_id":%q}`, order)))
}

// sagaStep is the saga's next message after m: the order id and the trace
// carried on.
func (w *Workload) sagaStep(m jetstream.Msg, subject string, data []byte) *nats.Msg {
	next := nats.NewMsg(subject)
	next.Data = data
	for _, h := range []string{orderHeader, "traceparent"} {
		if v := m.Headers().Get(h); v != "" {
			next.Header.Set(h, v)
		}
	}
	return next
}

func (w *Workload) publish(ctx context.Context, m *nats.Msg) bool {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(pctx, m); err != nil {
		if ctx.Err() == nil {
			w.logger.Debug("demo publish failed", "subject", m.Subject, "err", err)
		}
		return false
	}
	return true
}

// orderNumber is the number of a saga order id ("sg-000042": 42).
func orderNumber(order string) int {
	var n int
	if _, err := fmt.Sscanf(order, "sg-%d", &n); err != nil {
		return 0
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}
