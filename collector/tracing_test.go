package collector

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/internal/otlptest"
	"github.com/jetwatch/jetwatch/internal/telemetry"
)

func TestSampleCycleIsASpanAndItsLogLineCarriesTheIDs(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = b.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	recv := otlptest.Start(t)
	tr, err := telemetry.New(ctx, telemetry.Config{Env: recv.Env(nil)})
	require.NoError(t, err)
	var logs bytes.Buffer // SampleOnce logs from the calling goroutine
	logger := slog.New(telemetry.NewLogHandler(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	s, err := NewSampler(b.nc, b.db, SamplerConfig{Logger: logger, TracerProvider: tr.Provider(), JSZTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	require.NoError(t, tr.Shutdown(ctx))

	spans := recv.Named("sample cycle")
	require.Len(t, spans, 1, recv.Names())
	span := spans[0]
	require.Equal(t, "1", span.Attributes["jetwatch.streams"])
	require.Equal(t, "1", span.Attributes["jetwatch.consumers"])
	require.Equal(t, "true", span.Attributes["jetwatch.sample.saved"])
	require.Equal(t, "jetwatch", span.Resource["service.name"])
	require.Contains(t, logs.String(), "trace_id="+span.TraceID+" span_id="+span.SpanID, "the cycle's log line leads to its span")
}

func TestBridgedAdvisoryIsASpanLinkedToTheFailedMessage(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	recv := otlptest.Start(t)
	tr, err := telemetry.New(ctx, telemetry.Config{Env: recv.Env(nil)})
	require.NoError(t, err)
	bridge, err := NewBridge(b.nc, BridgeConfig{Logger: testLogger(t), TracerProvider: tr.Provider()})
	require.NoError(t, err)
	require.NoError(t, bridge.Start(ctx))
	t.Cleanup(bridge.Stop)

	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1, AckWait: time.Second})
	require.NoError(t, err)
	msg := nats.NewMsg("orders.created")
	msg.Data = []byte(`{"order_id":"ord-1"}`)
	msg.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	_, err = b.js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	fail(t, cons, func(m jetstream.Msg) error { return m.Nak() })
	_, err = cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
	require.NoError(t, err)

	var span otlptest.Span
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		spans := recv.Named("bridge advisory")
		if len(spans) == 0 {
			return fmt.Errorf("no bridge span yet; received: %s", recv.Names())
		}
		span = spans[0]
		return nil
	})
	require.Equal(t, "ORDERS", span.Attributes["jetwatch.stream"])
	require.Equal(t, "billing", span.Attributes["jetwatch.consumer"])
	require.Equal(t, "1", span.Attributes["jetwatch.stream_seq"])
	require.Equal(t, "bridged", span.Attributes["jetwatch.outcome"])
	require.Equal(t, "SPAN_KIND_CONSUMER", span.Kind.String())
	require.Equal(t, []string{"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"}, span.Links)
}
