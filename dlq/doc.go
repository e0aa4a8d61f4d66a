// Package dlq is jetwatch's dead-letter domain: the envelope (the Dlq-
// headers a dead letter carries in the DLQ stream), the index that reads the
// DLQ stream in order into SQLite, and the queries the dashboard runs over
// it.
//
// The DLQ stream is the system of record; the index can be deleted and
// rebuilt from it at any time. This package must not render anything.
package dlq
