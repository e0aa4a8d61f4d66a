package bulk

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the bulk jobs' spans' instrumentation scope.
const tracerName = "github.com/jetwatch/jetwatch/dlq/bulk"

// spanChunk names a chunk's span; the dead letters' own spans are its
// children.
const spanChunk = "bulk chunk"

// startChunk starts the span of one chunk of a bulk job.
func (b *Runner) startChunk(ctx context.Context, job Job, size int) (context.Context, trace.Span) {
	return b.tracer.Start(ctx, spanChunk, trace.WithAttributes(
		attribute.String("jetwatch.bulk.job", job.ID),
		attribute.String("jetwatch.bulk.action", job.Action),
		attribute.Int("jetwatch.bulk.chunk_size", size),
	))
}

// endChunk ends a chunk's span with its counts; a chunk with failures is
// an error.
func endChunk(span trace.Span, sent, failed int) {
	span.SetAttributes(attribute.Int("jetwatch.bulk.sent", sent), attribute.Int("jetwatch.bulk.failed", failed))
	if failed > 0 {
		span.SetStatus(codes.Error, "some dead letters of the chunk failed")
	}
	span.End()
}
