package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jetwatch/jetwatch/internal/telemetry"
)

// startTracing builds jetwatch's tracer provider from the OTEL_* variables
// of env (a no-op one when no OTLP endpoint is set) and hands it to the
// components through cfg.Tracing. It returns the logger that adds trace_id
// and span_id to lines logged inside a span, and stop, which flushes the
// spans still queued at exit, giving up after 5 seconds.
func startTracing(ctx context.Context, cfg *config, env func(string) string, logger *slog.Logger) (*slog.Logger, func(), error) {
	t, err := telemetry.New(ctx, telemetry.Config{Env: env, ServiceVersion: version()})
	if err != nil {
		return nil, nil, err
	}
	cfg.Tracing = t.Provider()
	logger = slog.New(telemetry.NewLogHandler(logger.Handler()))
	if t.Enabled() {
		logger.Info("tracing: exporting spans by OTLP/HTTP", "endpoint", t.Endpoint())
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(ctx); err != nil {
			logger.Warn("spans still queued were not exported", "err", err)
		}
	}
	return logger, stop, nil
}
