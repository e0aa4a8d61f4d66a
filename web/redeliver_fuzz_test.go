package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/dlq"
)

// FuzzRedeliverBody posts arbitrary bodies to the API's redeliver route of
// one real desk, each for a fresh pending dead letter. Whatever the body,
// the answer is never a 5xx but 503 while NATS is away, the connection
// stays up, no stream disappears, and a message sent lands only in the
// user stream.
func FuzzRedeliverBody(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"subject":"orders.created"}`, `{"subject":"$JS.API.STREAM.DELETE.ORDERS"}`,
		`{"subject":"` + strings.Repeat("a", 5000) + `"}`, `{"subject":"orders.\u0000x"}`,
		`{"payload":"e30=","headers":{"Bad Name":["x"]}}`, `{"headers":{"X":["a\r\nb"]}}`,
		`{"headers":{"Nats-Expected-Stream":["DLQ"],"nats-rollup":["all"]},"payload":"e30="}`,
		`{"payload":"not base64"}`, `[`, `null`, `{"subject":1}`, `{"headers":{"X":"not a list"}}`,
		`{"subject":"_INBOX.x"}`, `{"subject":"jetwatch.audit.x"}`, `{"subject":"KV_x"}`,
	} {
		f.Add(seed)
	}
	srv, d := setupDesk(f)
	ctx := context.Background()
	streams := func() []string {
		var names []string
		for n := range d.js.StreamNames(ctx).Name() {
			names = append(names, n)
		}
		slices.Sort(names)
		return names
	}
	before := streams()
	// Pending dead letters, published and indexed a batch at a time: one
	// per input, so no input is answered "already redelivered".
	var pending []uint64
	next := func(t *testing.T) uint64 {
		if len(pending) == 0 {
			for range 500 {
				m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
				m.Data = []byte(`{"order":"fuzz"}`)
				dlq.Envelope{Stream: "ORDERS", Consumer: "billing", Subject: "orders.created", Sequence: 1, Reason: dlq.ReasonError}.Apply(m.Header)
				ack, err := d.js.PublishMsg(ctx, m)
				if err != nil {
					t.Fatalf("publish dead letter: %v", err)
				}
				pending = append(pending, ack.Sequence)
			}
			if err := d.ix.CatchUp(ctx); err != nil {
				t.Fatalf("index: %v", err)
			}
		}
		id := pending[0]
		pending = pending[1:]
		return id
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/dead-letters/"+u(next(t))+"/redeliver", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 && !(rec.Code == http.StatusServiceUnavailable && !d.nc.IsConnected()) {
			t.Fatalf("body %.200q: %d %s", body, rec.Code, rec.Body.String())
		}
		if err := d.nc.Flush(); err != nil {
			t.Fatalf("body %.200q: the connection is gone: %v", body, err)
		}
		if rec.Code == http.StatusOK {
			var a struct {
				AckStream string `json:"ack_stream"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.AckStream != "ORDERS" {
				t.Fatalf("body %.200q: sent to %q (%v)", body, a.AckStream, err)
			}
		}
		if got := streams(); !slices.Equal(before, got) {
			t.Fatalf("body %.200q: streams changed from %v to %v", body, before, got)
		}
	})
}
