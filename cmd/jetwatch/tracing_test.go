package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/internal/otlptest"
)

// TestDemoTracesToAnOTLPReceiver runs `jetwatch demo` with
// OTEL_EXPORTER_OTLP_ENDPOINT set: a message fails, the bridge dead-letters
// it, an operator redelivers it through the API, and the receiver gets the
// sampling cycles, the bridged advisory, the request and the redelivery,
// linked to the failed message's trace.
func TestDemoTracesToAnOTLPReceiver(t *testing.T) {
	recv := otlptest.Start(t)
	base, natsURL, out := startDemoWithEnv(t, recv.Env(map[string]string{"OTEL_SERVICE_NAME": "jetwatch-demo"}), "--log-level", "info")
	ctx := context.Background()

	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRACED", Subjects: []string{"traced.>"}})
	require.NoError(t, err)
	cons, err := js.CreateOrUpdateConsumer(ctx, "TRACED", jetstream.ConsumerConfig{
		Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1, AckWait: time.Second})
	require.NoError(t, err)
	const original = "5b8efff798038103d269b633813fc60c"
	msg := nats.NewMsg("traced.job")
	msg.Data = []byte(`{"job":1}`)
	msg.Header.Set("traceparent", "00-"+original+"-eee19b7ec3c1b174-01")
	_, err = js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.Nak())
	}
	// MAX_DELIVERIES fires when the server would deliver again.
	_, err = cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
	require.NoError(t, err)

	var id uint64
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var page struct {
			Items []struct {
				ID uint64 `json:"id"`
			} `json:"items"`
		}
		getJSON(t, base+"/api/v1/dead-letters?stream=TRACED", &page)
		if len(page.Items) != 1 {
			return fmt.Errorf("%d dead letters of TRACED", len(page.Items))
		}
		id = page.Items[0].ID
		return nil
	})
	resp, err := http.Post(fmt.Sprintf("%s/api/v1/dead-letters/%d/redeliver", base, id), "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var post, redelivery otlptest.Span
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		posts, redeliveries := recv.Named("POST /api/v1/dead-letters/:id/redeliver"), recv.Named("redeliver dead letter")
		if len(posts) != 1 || len(redeliveries) != 1 || len(recv.Named("sample cycle")) == 0 {
			return fmt.Errorf("not every span yet: %s", recv.Names())
		}
		post, redelivery = posts[0], redeliveries[0]
		return nil
	})
	require.Equal(t, "jetwatch-demo", post.Resource["service.name"])
	require.Equal(t, "200", post.Attributes["http.response.status_code"])
	require.Equal(t, post.SpanID, redelivery.ParentSpanID, "the redelivery is part of the request")
	require.Equal(t, []string{original + "-eee19b7ec3c1b174"}, redelivery.Links, "and links to the failed message's trace")
	require.Equal(t, "traced.job", redelivery.Attributes["messaging.destination.name"])

	var bridged []otlptest.Span
	for _, s := range recv.Named("bridge advisory") {
		if s.Attributes["jetwatch.stream"] == "TRACED" {
			bridged = append(bridged, s)
		}
	}
	require.Len(t, bridged, 1)
	require.Equal(t, "bridged", bridged[0].Attributes["jetwatch.outcome"])
	require.Equal(t, []string{original + "-eee19b7ec3c1b174"}, bridged[0].Links)

	// The redelivered message continues the redelivery's trace.
	stream, err := js.Stream(ctx, "TRACED")
	require.NoError(t, err)
	again, err := stream.GetLastMsgForSubject(ctx, "traced.job")
	require.NoError(t, err)
	require.Equal(t, "00-"+redelivery.TraceID+"-"+redelivery.SpanID+"-01", again.Header.Get("traceparent"))

	// The request's log line carries its ids.
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		for line := range strings.Lines(out.String()) {
			if strings.Contains(line, "/redeliver") && strings.Contains(line, "trace_id="+post.TraceID) {
				return nil
			}
		}
		return fmt.Errorf("no request log line with trace_id=%s:\n%s", post.TraceID, out.String())
	})
	require.Contains(t, out.String(), "tracing: exporting spans")
}

func TestTracingRefusesGRPCAtStart(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
	err := run(context.Background(), []string{"serve", "--data", t.TempDir()}, func(k string) string { return env[k] }, &syncBuffer{})
	require.ErrorContains(t, err, "jetwatch exports OTLP over HTTP; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
}
