package store

import "strings"

// jetwatch's own streams and consumers are named by these prefixes (and,
// for streams, by the names its configuration gives the DLQ and advisory
// streams). ownEventSQL is the same rule in SQL; keep them in step.
const (
	ownStreamPrefix   = "JETWATCH_"
	ownKVStreamPrefix = "KV_jetwatch_"
	ownConsumerDash   = "jetwatch-"
	ownConsumerUnder  = "jetwatch_"
)

// OwnStreamName says whether a stream is jetwatch's by its name alone:
// JETWATCH_* and the streams of its KV buckets (KV_jetwatch_*).
func OwnStreamName(name string) bool {
	return strings.HasPrefix(name, ownStreamPrefix) || strings.HasPrefix(name, ownKVStreamPrefix)
}

// OwnConsumerName says whether a consumer on someone else's stream is
// jetwatch's: jetwatch-*, jetwatch_* or described as jetwatch's.
func OwnConsumerName(name, description string) bool {
	return strings.HasPrefix(name, ownConsumerDash) || strings.HasPrefix(name, ownConsumerUnder) ||
		strings.HasPrefix(description, "jetwatch")
}

// EventAdvisoryRejected is the kind of the event the dead-letter bridge
// records for an advisory it rejected (collector.EventAdvisoryRejected).
const EventAdvisoryRejected = "advisory_rejected"

// ownEventSQL is true for an event about jetwatch's own streams or
// consumers: by name, or marked own by the last sample (the configured
// DLQ and advisory streams, and every consumer of jetwatch's streams).
const ownEventSQL = `(stream GLOB '` + ownStreamPrefix + `*' OR stream GLOB '` + ownKVStreamPrefix + `*'
	OR consumer GLOB '` + ownConsumerDash + `*' OR consumer GLOB '` + ownConsumerUnder + `*'
	OR stream IN (SELECT name FROM streams WHERE own = 1))`
