package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/internal/otlptest"
	"github.com/jetwatch/jetwatch/internal/telemetry"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestTracingIsOffUnlessAnEndpointIsSet(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"unset":          {},
		"only a service": {"OTEL_SERVICE_NAME": "jw"},
		"sdk disabled":   {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"exporter none":  {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := telemetry.New(context.Background(), telemetry.Config{Env: envOf(env)})
			require.NoError(t, err)
			require.False(t, tr.Enabled())
			_, span := tr.Provider().Tracer("x").Start(context.Background(), "nothing")
			require.False(t, span.IsRecording(), "a no-op provider records nothing")
			require.False(t, span.SpanContext().IsValid())
			require.NoError(t, tr.Shutdown(context.Background()))
		})
	}
}

func TestTracingRefusesWhatItCannotHonour(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"grpc": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			"jetwatch exports OTLP over HTTP; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"},
		"grpc for traces": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"},
		"other exporter": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, "OTLP only"},
		"no scheme":      {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "give a URL"},
		"bad sampler":    {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		"bad ratio": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "traceidratio",
			"OTEL_TRACES_SAMPLER_ARG": "2"}, "ratio from 0 to 1"},
		"bad timeout":   {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, "milliseconds"},
		"bad headers":   {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "key=value"},
		"bad disabled":  {map[string]string{"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED"},
		"half a client": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, "both"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := telemetry.New(context.Background(), telemetry.Config{Env: envOf(tc.env)})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestTracingExportsToTheEndpointWithResourceAndHeaders(t *testing.T) {
	t.Parallel()
	recv := otlptest.Start(t)
	tr, err := telemetry.New(context.Background(), telemetry.Config{ServiceVersion: "v1.2.3", Env: recv.Env(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES":   "deployment.environment=prod,team=dead%20letters",
		"OTEL_SERVICE_NAME":          "jetwatch-eu",
		"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc",
		"OTEL_TRACES_SAMPLER":        "always_on",
	})})
	require.NoError(t, err)
	require.True(t, tr.Enabled())
	require.Equal(t, recv.URL+"/v1/traces", tr.Endpoint())
	_, span := tr.Provider().Tracer("test").Start(context.Background(), "hello")
	span.End()
	require.NoError(t, tr.Shutdown(context.Background()), "shutdown flushes")

	spans := recv.Named("hello")
	require.Len(t, spans, 1)
	require.Equal(t, "jetwatch-eu", spans[0].Resource["service.name"], "OTEL_SERVICE_NAME wins")
	require.Equal(t, "v1.2.3", spans[0].Resource["service.version"])
	require.Equal(t, "prod", spans[0].Resource["deployment.environment"])
	require.Equal(t, "dead letters", spans[0].Resource["team"], "values are percent-decoded")
	require.Equal(t, "Bearer abc", recv.Headers()[0].Get("Authorization"))
}

func TestTracingDefaultsTheServiceName(t *testing.T) {
	t.Parallel()
	recv := otlptest.Start(t)
	// The signal-specific endpoint is used as it is.
	tr, err := telemetry.New(context.Background(), telemetry.Config{Env: envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": recv.URL + "/v1/traces",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
	})})
	require.NoError(t, err)
	_, span := tr.Provider().Tracer("test").Start(context.Background(), "hello")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tr.Shutdown(ctx))
	spans := recv.Named("hello")
	require.Len(t, spans, 1)
	require.Equal(t, "jetwatch", spans[0].Resource["service.name"])
	require.Equal(t, "gzip", recv.Headers()[0].Get("Content-Encoding"))
}

func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))

	logger.InfoContext(ctx, "inside a span")
	logger.Info("outside")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var inside, outside map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &inside))
	require.NoError(t, json.Unmarshal(lines[1], &outside))
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", inside["trace_id"])
	require.Equal(t, "b7ad6b7169203331", inside["span_id"])
	require.Equal(t, "test", inside["component"])
	require.NotContains(t, outside, "trace_id")
	require.NotContains(t, outside, "span_id")
}
