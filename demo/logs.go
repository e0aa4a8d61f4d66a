package demo

import (
	"context"
	"log/slog"
)

// serviceLogs carries the log lines of the demo's sample services at
// debug level, their own level kept as service_level. What they report
// is the demo's business: jetwatch speaks for itself about what it sees
// of them (its breaker watcher logs each breaker change once), and
// --log-level debug shows both.
type serviceLogs struct{ next slog.Handler }

// Enabled reports whether next handles debug lines.
func (h serviceLogs) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.next.Enabled(ctx, slog.LevelDebug)
}

// Handle passes the record on at debug level.
func (h serviceLogs) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	out.AddAttrs(slog.String("service_level", r.Level.String()))
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs returns serviceLogs over next.WithAttrs.
func (h serviceLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return serviceLogs{h.next.WithAttrs(attrs)}
}

// WithGroup returns serviceLogs over next.WithGroup.
func (h serviceLogs) WithGroup(name string) slog.Handler { return serviceLogs{h.next.WithGroup(name)} }
