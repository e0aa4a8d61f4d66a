// Package store owns jetwatch's SQLite database: opening it (WAL,
// synchronous=NORMAL), the ordered list of migrations, and the queries for
// the stream and consumer state the collector samples.
//
// The database is an index, never the system of record: everything in it can
// be rebuilt from JetStream, so it may be deleted at any time. This package
// must not talk to NATS.
package store
