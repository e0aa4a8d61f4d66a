package collector

import (
	"slices"

	"github.com/jetwatch/jetwatch/store"
)

// ownership says which streams and consumers are jetwatch's own, so that
// its readers, durables and records never count as the operator's
// problems: they are listed only when asked for.
type ownership struct {
	// streams are jetwatch's streams under names of the operator's choosing.
	streams []string
}

// stream says whether a stream is jetwatch's: JETWATCH_*, the streams of
// its KV buckets (jetwatch_*), and the configured DLQ and advisory streams.
func (o ownership) stream(name string) bool {
	return store.OwnStreamName(name) || slices.Contains(o.streams, name)
}

// consumer says whether a consumer is jetwatch's: every consumer of its
// streams, and its durables elsewhere (jetwatch-*, jetwatch_* or
// described as jetwatch's).
func (o ownership) consumer(stream, name, description string) bool {
	return o.stream(stream) || store.OwnConsumerName(name, description)
}
