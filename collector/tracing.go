package collector

import (
	"context"
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/store"
)

// tracerName names the collector's spans' instrumentation scope.
const tracerName = "github.com/jetwatch/jetwatch/collector"

// recordCycle puts what a sampling cycle found on its span: counts, and
// each problem as an event, in the operator's words.
func recordCycle(ctx context.Context, c store.Cycle, problems []string, saved bool) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		attribute.Int("jetwatch.streams", len(c.Streams)),
		attribute.Int("jetwatch.consumers", len(c.Consumers)),
		attribute.Int("jetwatch.servers", len(c.Servers)),
		attribute.Int("jetwatch.sample.errors", len(problems)),
		attribute.Bool("jetwatch.sample.saved", saved),
	)
	for _, p := range problems {
		span.AddEvent("sample problem", trace.WithAttributes(attribute.String("jetwatch.problem", p)))
	}
}

// endCycleSpan ends a cycle's span, failed when nothing could be stored.
func endCycleSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Outcomes of a bridged advisory, on its span.
const (
	outcomeBridged            = "bridged"
	outcomePayloadUnavailable = "payload_unavailable"
	outcomeSkipped            = "skipped"
	outcomeRejected           = "rejected"
	outcomeUnverified         = "unverified"
	outcomeFailed             = "failed"
)

// bridgeAttributes describe an advisory on its span; its values may not
// have passed validation, so strings are clipped and numbers capped.
func bridgeAttributes(a deliveryAdvisory) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("jetwatch.advisory.type", clip(a.Type)),
		attribute.String("jetwatch.stream", clip(a.Stream)),
		attribute.Int64("jetwatch.stream_seq", int64(min(a.StreamSeq, math.MaxInt64))),
		attribute.String("jetwatch.consumer", clip(a.Consumer)),
		attribute.Int64("jetwatch.deliveries", int64(min(a.Deliveries, math.MaxInt64))),
	}
}

// endBridgeSpan ends a bridged advisory's span with its outcome; an error
// (the advisory will be retried) marks it failed.
func endBridgeSpan(span trace.Span, outcome string, err error) {
	if err != nil {
		outcome = outcomeFailed
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(attribute.String("jetwatch.outcome", outcome))
	span.End()
}
