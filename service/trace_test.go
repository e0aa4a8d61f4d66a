package service

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// TestTraceFlowsFromPublishToHandlerToDeadLetter: the handler's span
// continues the publisher's trace, and the dead letter carries that trace
// context, which a redelivery keeps (see dlq's redelivery test).
func TestTraceFlowsFromPublishToHandlerToDeadLetter(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	// A runner made while no provider is set makes no spans (they would
	// not be recorded) until one is set. Only this test sets one: unset
	// unless the test runs again in this process.
	before := otel.GetTracerProvider()
	if !globalProviderSet {
		require.True(t, isUnsetGlobal(before), "OTel's global provider as it starts is recognised")
		require.False(t, (&Runner{unsetGlobal: before}).tracing())
	}
	otel.SetTracerProvider(tp)
	globalProviderSet = true
	require.False(t, isUnsetGlobal(otel.GetTracerProvider()))
	require.True(t, (&Runner{unsetGlobal: before}).tracing(), "a provider set after New is used")
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // test

	b := setup(t, jetstream.WorkQueuePolicy, jetstream.ConsumerConfig{})
	ctx, parent := tp.Tracer("test").Start(b.ctx, "place order")
	_, err := Publish(ctx, b.js, "jobs.resize", []byte("x"))
	require.NoError(t, err)
	parent.End()

	b.runner(t, Config{Handler: func(ctx context.Context, m jetstream.Msg) error {
		return Permanent(fmt.Errorf("unsupported"))
	}})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, err := b.js.Stream(b.ctx, "DLQ")
		if err != nil {
			return err
		}
		if s.CachedInfo().State.Msgs != 1 {
			return fmt.Errorf("no dead letter yet")
		}
		return nil
	})
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if len(recorder.Ended()) < 2 {
			return fmt.Errorf("%d spans ended", len(recorder.Ended()))
		}
		return nil
	})
	var process sdktrace.ReadOnlySpan
	for _, s := range recorder.Ended() {
		if s.Name() == "process jobs.resize" {
			process = s
		}
	}
	require.NotNil(t, process, "a span per message")
	require.Equal(t, parent.SpanContext().TraceID(), process.SpanContext().TraceID(), "the handler continues the publisher's trace")
	require.Equal(t, parent.SpanContext().SpanID(), process.Parent().SpanID())
	require.Equal(t, "Error", process.Status().Code.String())

	letter := dlqMessages(t, b)[0]
	require.Contains(t, letter.Header.Get("traceparent"), parent.SpanContext().TraceID().String(), "the dead letter carries the trace")
}

// globalProviderSet says TestTraceFlowsFromPublishToHandlerToDeadLetter
// has set the global TracerProvider.
var globalProviderSet bool

// TestNoSpansWithANoopProvider: a runner given the no-op provider makes
// no span at all; one given a real provider does.
func TestNoSpansWithANoopProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	b.publish(t, 1)
	var spans []trace.Span
	var mu sync.Mutex
	r := b.runner(t, Config{TracerProvider: noop.NewTracerProvider(), Handler: func(ctx context.Context, m jetstream.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		spans = append(spans, trace.SpanFromContext(ctx))
		return nil
	}})
	require.False(t, r.tracing())
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(spans) != 1 {
			return fmt.Errorf("%d messages handled", len(spans))
		}
		return nil
	})
	require.False(t, spans[0].SpanContext().IsValid(), "the handler's context holds no span")
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // test
	require.True(t, (&Runner{noTracing: isNoopProvider(tp)}).tracing())
}

// TestTracerProviderOption: a runner given a TracerProvider makes its
// spans there, not with the global provider.
func TestTracerProviderOption(t *testing.T) {
	t.Parallel()
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // test

	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	b.publish(t, 3)
	b.runner(t, Config{TracerProvider: tp, Handler: func(ctx context.Context, m jetstream.Msg) error { return nil }})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := len(recorder.Ended()); n < 3 {
			return fmt.Errorf("%d spans ended, want 3", n)
		}
		return nil
	})
	for _, s := range recorder.Ended() {
		require.Equal(t, "process jobs.resize", s.Name())
		require.Equal(t, tracerName, s.InstrumentationScope().Name)
		require.Contains(t, s.Attributes(), attribute.String("messaging.consumer.group.name", "worker"))
	}
}
