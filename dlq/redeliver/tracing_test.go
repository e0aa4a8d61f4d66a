package redeliver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/otlptest"
	"github.com/jetwatch/jetwatch/internal/telemetry"
)

// originalTrace is the trace id of the traceparent deadLetter stores.
const originalTrace = "0af7651916cd43dd8448eb211c80319c"

// tracedRedeliverer is a Redeliverer on b's connection exporting spans to
// a receiver; flush exports what is queued.
func tracedRedeliverer(t *testing.T, b *bundle) (r *Redeliverer, tr *telemetry.Tracing, recv *otlptest.Receiver, flush func()) {
	t.Helper()
	recv = otlptest.Start(t)
	tr, err := telemetry.New(b.ctx, telemetry.Config{Env: recv.Env(nil)})
	require.NoError(t, err)
	r, err = New(b.js.Conn(), b.db, Config{TracerProvider: tr.Provider()})
	require.NoError(t, err)
	return r, tr, recv, func() { require.NoError(t, tr.Shutdown(context.Background())) }
}

func TestRedeliverySpanLinksToTheOriginalTrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r, _, recv, flush := tracedRedeliverer(t, b)
	id := b.deadLetter(t, `{"order":"ord-1"}`, false)
	gone := b.deadLetter(t, "", true)

	a, err := r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.NoError(t, err)
	_, err = r.Redeliver(b.ctx, Request{ID: gone, Actor: "ann"})
	require.ErrorIs(t, err, ErrPayloadUnavailable)
	_, err = r.Discard(b.ctx, gone, "ann", "nothing to send")
	require.NoError(t, err)
	flush()

	spans := recv.Named(spanRedeliver)
	require.Len(t, spans, 2, recv.Names())
	sent, refused := spans[0], spans[1]
	if sent.Attributes["jetwatch.result"] != "sent" {
		sent, refused = refused, sent
	}
	require.Equal(t, "sent", sent.Attributes["jetwatch.result"])
	require.Equal(t, "orders.created", sent.Attributes["messaging.destination.name"])
	require.Equal(t, "ORDERS", sent.Attributes["jetwatch.stream"])
	require.Equal(t, "1", sent.Attributes["jetwatch.attempt"])
	require.Equal(t, []string{originalTrace + "-b7ad6b7169203331"}, sent.Links, "linked to the dead letter's original trace")
	require.NotEqual(t, originalTrace, sent.TraceID, "a redelivery is new work, not part of the original trace")
	require.Equal(t, "refused", refused.Attributes["jetwatch.result"])
	require.Equal(t, "STATUS_CODE_ERROR", refused.Status.String())

	// The redelivered message carries the redelivery span's context, so
	// the service's processing continues the redelivery's trace.
	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	got, err := s.GetMsg(b.ctx, a.AckSeq)
	require.NoError(t, err)
	require.Equal(t, "00-"+sent.TraceID+"-"+sent.SpanID+"-01", got.Header.Get("traceparent"))

	discards := recv.Named(spanDiscard)
	require.Len(t, discards, 1)
	require.Equal(t, "sent", discards[0].Attributes["jetwatch.result"])
	require.Equal(t, []string{originalTrace + "-b7ad6b7169203331"}, discards[0].Links)
}

func TestAnUnrecordedRedeliveryKeepsTheOriginalTraceparent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	recv := otlptest.Start(t)
	tr, err := telemetry.New(b.ctx, telemetry.Config{Env: recv.Env(map[string]string{"OTEL_TRACES_SAMPLER": "always_off"})})
	require.NoError(t, err)
	r, err := New(b.js.Conn(), b.db, Config{TracerProvider: tr.Provider()})
	require.NoError(t, err)
	id := b.deadLetter(t, `{"order":"ord-1"}`, false)

	a, err := r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.NoError(t, err)
	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	got, err := s.GetMsg(b.ctx, a.AckSeq)
	require.NoError(t, err)
	require.Equal(t, "00-"+originalTrace+"-b7ad6b7169203331-01", got.Header.Get("traceparent"))
	require.NoError(t, tr.Shutdown(b.ctx))
	require.Empty(t, recv.Spans())
}
