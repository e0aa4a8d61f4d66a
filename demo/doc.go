// Package demo runs what `jetwatch demo` shows: an embedded NATS server with
// JetStream (stored under the data directory) and a synthetic workload whose
// streams and consumers exercise every state the dashboard can show: a
// consumer slower than its producer, a stalled consumer, a stream at its
// limits.
//
// It is for demonstration and tests only; serve never imports it.
package demo
