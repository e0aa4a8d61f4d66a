package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config says where the OTEL_* settings come from.
type Config struct {
	// Env reads an environment variable. Required: main passes os.Getenv,
	// tests their own.
	Env func(string) string
	// ServiceVersion is recorded as the resource's service.version.
	// Defaults to none.
	ServiceVersion string
}

// Tracing is jetwatch's tracer provider and how to flush it.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil while off
	endpoint string
}

// New builds the tracer provider the environment asks for: an OTLP/HTTP
// exporter behind a batch span processor, or a no-op provider when no
// endpoint is set (or OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none).
// A setting it cannot honour (the gRPC protocol, a malformed value) is an
// error, so a misconfiguration shows at start rather than as missing traces.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	s, err := readSettings(cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if !s.enabled {
		return &Tracing{provider: noop.NewTracerProvider()}, nil
	}
	// Every option is passed explicitly, so the exporter's own reading of
	// the process environment never overrides what Env said.
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(s.endpoint),
		otlptracehttp.WithHeaders(s.headers),
		otlptracehttp.WithTimeout(s.timeout),
		otlptracehttp.WithCompression(otlptracehttp.NoCompression),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
	}
	if s.tls != nil {
		opts = append(opts, otlptracehttp.WithTLSClientConfig(s.tls))
	}
	if s.gzip {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	if s.json {
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter to %s: %w", s.endpoint, err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(resourceAttributes(s, cfg.ServiceVersion)...))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, s.batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(s.sampler),
	)
	shown := s.endpoint
	if u, err := url.Parse(s.endpoint); err == nil {
		shown = u.Redacted()
	}
	return &Tracing{provider: tp, sdk: tp, endpoint: shown}, nil
}

func resourceAttributes(s settings, version string) []attribute.KeyValue {
	keys := make([]string, 0, len(s.resource))
	for k := range s.resource {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var attrs []attribute.KeyValue
	for _, k := range keys {
		attrs = append(attrs, attribute.String(k, s.resource[k]))
	}
	attrs = append(attrs, attribute.String("service.name", s.serviceName))
	if version != "" {
		if _, set := s.resource["service.version"]; !set {
			attrs = append(attrs, attribute.String("service.version", version))
		}
	}
	return attrs
}

// Provider is the tracer provider to give components: a no-op one while
// tracing is off.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Enabled says whether spans are exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Endpoint is the URL spans are sent to, without a password, empty while
// off.
func (t *Tracing) Endpoint() string { return t.endpoint }

// Shutdown exports the spans still queued and stops the exporter, giving
// up when ctx ends. Nothing to do while off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans to %s: %w", t.endpoint, err)
	}
	return nil
}
