// Package tracecontext carries W3C trace context (traceparent,
// tracestate) in NATS message headers and hands out tracers. It is kept
// apart from internal/telemetry, which sets up the OTLP exporter, so that
// the packages services import (service, dlq) do not link the exporter.
package tracecontext

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// W3C Trace Context (traceparent, tracestate) is the only propagation format
// jetwatch reads and writes: it is what services put on their messages.

// HeaderCarrier lets the W3C trace-context propagator read and write NATS
// headers (or a dead letter's stored headers), keeping the lower-case
// names it uses as they are.
type HeaderCarrier map[string][]string

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values.
func (h HeaderCarrier) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// SpanContextOf returns the trace context in headers' traceparent (and
// tracestate), invalid when there is none or it is malformed.
func SpanContextOf(headers map[string][]string) trace.SpanContext {
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), HeaderCarrier(headers)))
}

// LinkTo is a link to the trace in headers, and whether there is one.
func LinkTo(headers map[string][]string) (trace.Link, bool) {
	sc := SpanContextOf(headers)
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// Inject writes the context of ctx's span into headers, replacing the
// traceparent and tracestate there, when that span is recorded (tracing
// is on and sampled it); otherwise headers stay as they are, so a message
// passing through jetwatch untraced keeps its own trace. It reports
// whether it wrote.
func Inject(ctx context.Context, headers map[string][]string) bool {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return false
	}
	delete(headers, "traceparent")
	delete(headers, "tracestate")
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(headers))
	return true
}

// Tracer returns the named tracer of tp, or a no-op tracer when tp is nil,
// so components can leave their TracerProvider unset.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(name)
}

// ValidTraceID reports whether id is a well-formed W3C trace id: 32
// lowercase hex digits, not all zeros. Only such an id may go into a link
// to a tracing UI; anything else in a message's traceparent is hostile
// input that could point the link elsewhere.
func ValidTraceID(id string) bool {
	if len(id) != 32 {
		return false
	}
	zeros := true
	for i := range len(id) {
		c := id[i]
		switch {
		case c == '0':
		case '1' <= c && c <= '9', 'a' <= c && c <= 'f':
			zeros = false
		default:
			return false
		}
	}
	return !zeros
}

// TraceIDField is the trace id field of a traceparent value
// ("version-traceid-parentid-flags"), valid or not; a value without
// dashes is returned whole.
func TraceIDField(traceparent string) string {
	parts := strings.SplitN(traceparent, "-", 3)
	if len(parts) < 2 {
		return traceparent
	}
	return parts[1]
}
