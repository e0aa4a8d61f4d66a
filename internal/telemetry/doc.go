// Package telemetry is jetwatch's own OpenTelemetry tracing: it builds the
// tracer provider from the standard OTEL_* environment variables (read
// through an injected env func, never os.Getenv, so tests and main choose
// what it sees), exports by OTLP over HTTP, and is a no-op provider when no
// endpoint is configured. It also adds trace_id and span_id to slog
// records. Trace context in NATS headers is internal/tracecontext's, so
// that the packages services import do not link the exporter.
//
// Components receive a trace.TracerProvider in their config; this package
// must not hold a global provider or register anything.
package telemetry
