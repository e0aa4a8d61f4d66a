package tracecontext_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/internal/tracecontext"
)

func TestHeadersCarryTraceContext(t *testing.T) {
	t.Parallel()
	h := map[string][]string{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "tracestate": {"a=b"}}
	link, ok := tracecontext.LinkTo(h)
	require.True(t, ok)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", link.SpanContext.TraceID().String())
	_, ok = tracecontext.LinkTo(map[string][]string{"traceparent": {"garbage"}})
	require.False(t, ok)

	require.False(t, tracecontext.Inject(context.Background(), h), "no span: the headers stay")
	require.Equal(t, "a=b", h["tracestate"][0])
	// A trace passing through without being recorded (tracing off, a
	// trusted proxy's traceparent) does not replace the message's own.
	tid, _ := trace.TraceIDFromHex("11111111111111111111111111111111")
	sid, _ := trace.SpanIDFromHex("2222222222222222")
	passing := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	require.False(t, tracecontext.Inject(passing, h))

	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(passing, "redeliver")
	defer span.End()
	require.True(t, tracecontext.Inject(ctx, h))
	require.Equal(t, []string{"00-11111111111111111111111111111111-" + span.SpanContext().SpanID().String() + "-01"}, h["traceparent"])
	require.NotContains(t, h, "tracestate", "the original's tracestate does not describe the new parent")
}

func TestValidTraceID(t *testing.T) {
	t.Parallel()
	require.True(t, tracecontext.ValidTraceID("0af7651916cd43dd8448eb211c80319c"))
	require.True(t, tracecontext.ValidTraceID("00000000000000000000000000000001"))
	for _, id := range []string{
		"", "00000000000000000000000000000000", "0AF7651916CD43DD8448EB211C80319C", "0af7651916cd43dd8448eb211c80319",
		"0af7651916cd43dd8448eb211c80319c0", "0af7651916cd43dd8448eb211c80319g", "../../admin?x=aaaaaaaaaaaaaaaaaa",
		`"><script>alert(1)</script>aaaaa`, "0af7651916cd43dd8448eb211c8031 c", "0af7651916cd43dd8448eb211c8031\x00",
		"0af7651916cd43dd8448eb211c80319\u00e9",
	} {
		require.False(t, tracecontext.ValidTraceID(id), "%q", id)
	}
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", tracecontext.TraceIDField("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
	require.Equal(t, "x/../y", tracecontext.TraceIDField("00-x/../y"))
	require.Equal(t, "garbage", tracecontext.TraceIDField("garbage"))
}
