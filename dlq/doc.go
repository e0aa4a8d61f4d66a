// Package dlq is jetwatch's dead-letter desk: the index that reads the DLQ
// stream in order into the store, and the queries the dashboard runs over
// it (with each dead letter's message read from the DLQ stream). It also
// holds what every part of the desk shares: the envelope as the index
// reads it (Decode) and the actions operators take (Action), which
// dlq/redeliver records in the actions stream. Bulk jobs are in dlq/bulk;
// the envelope services write is in package deadletter.
//
// The DLQ and actions streams are the system of record; the index can be
// deleted and rebuilt from them at any time. This package renders nothing
// and writes no SQL (store does).
package dlq
