package demo

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServiceLogsAreTheDemos: a sample service's warning (its breaker
// opened) is not in jetwatch's log at info; at debug it is, with its own
// level and attributes.
func TestServiceLogsAreTheDemos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelInfo, ""},
		{slog.LevelDebug, `level=DEBUG msg="circuit breaker changed state" component=demo stream=ORDERS service_level=WARN breaker=email-gateway to=open` + "\n"},
	} {
		var b strings.Builder
		jetwatch := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: tc.level,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}})).With("component", "demo")
		svc := slog.New(serviceLogs{jetwatch.Handler()}).With("stream", "ORDERS")
		svc.Warn("circuit breaker changed state", "breaker", "email-gateway", "to", "open")
		require.Equal(t, tc.want, b.String(), tc.level)
	}
}
