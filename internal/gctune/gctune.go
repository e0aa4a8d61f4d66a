// Package gctune sets how far the Go heap grows between collections in
// jetwatch's own processes.
//
// Most of what jetwatch holds lives from one sample cycle to the next
// (every consumer's lag window, the exposition served on /metrics) and a
// cycle builds as much again, so its heap swings between about that and
// the collector's target: with Go's default GOGC=100, twice what is live.
// At 10,000 streams x 10 consumers that put the resident peak above
// 400 MB; with 75 it stays about 40 MiB lower, for about 0.1 s more
// collecting a cycle (jetwatch-bench; README, Performance). Prometheus
// made the same trade in 2.53 (GOGC 50).
package gctune

import (
	"runtime/debug"
	"runtime/metrics"
)

// DefaultPercent is jetwatch's GOGC when the environment sets none.
const DefaultPercent = 75

// Apply sets the collector's target to DefaultPercent unless the
// environment sets GOGC, which the Go runtime has then applied already.
func Apply(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultPercent)
	}
}

// Percent is the collector's target in effect, as GOGC gives it; -1
// when collection is off (GOGC=off).
func Percent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1
	}
	return int(s[0].Value.Uint64())
}
