package deadletter

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestApplyReplacesTheEnvelopeAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	h.Set("Dlq-Old", "gone")
	h.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: 42, Consumer: "billing", Deliveries: 5,
		Reason: ReasonMaxDeliver, Error: "card declined\r\nretry later", FailedAt: at, Service: "billing-svc"}.Apply(h)

	require.Empty(t, h.Get("Dlq-Old"))
	require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", h.Get("traceparent"))
	require.Equal(t, "ORDERS", h.Get(HeaderStream))
	require.Equal(t, "42", h.Get(HeaderSequence))
	require.Equal(t, "5", h.Get(HeaderDeliveries))
	require.Equal(t, "card declined retry later", h.Get(HeaderError))
	require.Equal(t, "2026-11-26T11:00:00Z", h.Get(HeaderFailedAt))
	require.Empty(t, h.Values(HeaderPayloadUnavailable), "an empty field is left out")
	require.Equal(t, "dlq.ORDERS.billing", Subject("ORDERS", "billing"))
	for k := range h {
		require.Equal(t, k != "traceparent", IsEnvelopeHeader(k), k)
	}
}

func TestHeaderValueCutsAtACharacter(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", MaxErrorLen) // 2 bytes each
	h := nats.Header{}
	Envelope{Error: long}.Apply(h)
	got := h.Get(HeaderError)
	require.True(t, utf8.ValidString(got))
	require.True(t, strings.HasSuffix(got, "…"))
	require.LessOrEqual(t, len(got), MaxErrorLen+len("…"))
	require.Equal(t, "short", HeaderValue("short", 10))
}
