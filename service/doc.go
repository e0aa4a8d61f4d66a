// Package service is for the Go services that consume JetStream: it runs a
// pull consumer with bounded concurrency and graceful shutdown, retries
// failures on a backoff schedule within the consumer's MaxDeliver, keeps
// long handlers alive with InProgress, and dead-letters what cannot be
// handled to dlq.<stream>.<consumer> in the envelope jetwatch's dashboard
// understands, before it terminates the original, so a WorkQueue payload
// survives.
//
// Of jetwatch it imports only the dead-letter envelope (package
// deadletter) and small NATS helpers: no cgo, SQLite or server side, as
// TestServiceLinksNoServerSide checks.
package service
