package gctune

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplyLeavesAGOGCFromTheEnvironment(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	Apply(func(string) string { return "" })
	require.Equal(t, DefaultPercent, Percent(), "no GOGC: jetwatch's default")

	// The runtime applied GOGC=150 when the process started: Apply keeps it.
	debug.SetGCPercent(150)
	Apply(func(name string) string {
		if name == "GOGC" {
			return "150"
		}
		return ""
	})
	require.Equal(t, 150, Percent())
}
