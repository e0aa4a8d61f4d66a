package redeliver

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// tracerName names the redelivery and discard spans' instrumentation
// scope. It is the dlq package's path, as before the package split, so
// that trace queries filtering on the scope keep finding these spans.
const tracerName = "github.com/jetwatch/jetwatch/dlq"

// Span names, in the operator's words.
const (
	spanRedeliver = "redeliver dead letter"
	spanDiscard   = "discard dead letter"
)

// startAction starts the span of one redelivery or discard. A redelivery
// publishes, so it is a producer span.
func (r *Redeliverer) startAction(ctx context.Context, action string, id uint64) (context.Context, trace.Span) {
	name, kind := spanRedeliver, trace.SpanKindProducer
	if action == dlq.ActionDiscard {
		name, kind = spanDiscard, trace.SpanKindInternal
	}
	return r.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(
		attribute.Int64("jetwatch.dead_letter.id", int64(id))))
}

// linkOriginal links an action's span to the trace of the message that
// became the dead letter (its stored traceparent), and says where it came
// from.
func linkOriginal(span trace.Span, d store.DeadLetter) {
	if !span.IsRecording() {
		return
	}
	if link, ok := tracecontext.LinkTo(d.Headers); ok {
		span.AddLink(link)
	}
	span.SetAttributes(
		attribute.String("jetwatch.stream", d.Stream),
		attribute.String("jetwatch.consumer", d.Consumer),
		attribute.Int64("jetwatch.stream_seq", int64(d.StreamSeq)),
	)
}

// endAction ends an action's span with what happened.
func endAction(span trace.Span, a dlq.Action, err error) {
	if span.IsRecording() {
		if a.Action == dlq.ActionRedeliver {
			span.SetAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", a.Subject),
				attribute.Int("jetwatch.attempt", a.Attempt),
				attribute.Bool("jetwatch.edited", a.Edited),
				attribute.Bool("jetwatch.duplicate", a.Duplicate),
			)
		}
		span.SetAttributes(attribute.String("jetwatch.result", actionResult(err)))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
