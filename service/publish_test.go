package service

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestPublishSetsMsgIDAndTraceContextAndIsIdempotent(t *testing.T) {
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	otel.SetTextMapPropagator(propagation.TraceContext{})
	traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(b.ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))

	ack, err := Publish(ctx, b.js, "jobs.resize", []byte("x"), WithMsgID("order-7"))
	require.NoError(t, err)
	again, err := Publish(ctx, b.js, "jobs.resize", []byte("x"), WithMsgID("order-7"))
	require.NoError(t, err)
	require.True(t, again.Duplicate, "the same id is stored once")
	require.Equal(t, ack.Sequence, again.Sequence)

	s, err := b.js.Stream(context.Background(), "JOBS")
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), ack.Sequence)
	require.NoError(t, err)
	require.Equal(t, "order-7", m.Header.Get(jetstream.MsgIDHeader))
	require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", m.Header.Get("traceparent"))

	other, err := Publish(b.ctx, b.js, "jobs.resize", []byte("y"))
	require.NoError(t, err)
	require.False(t, other.Duplicate)
	m, err = s.GetMsg(context.Background(), other.Sequence)
	require.NoError(t, err)
	require.Len(t, m.Header.Get(jetstream.MsgIDHeader), 32, "an id is made up when none is given")
}
