// Package dlq is what the parts of jetwatch's dead-letter handling share:
// the envelope as the index reads it (Decode), and the actions operators
// take on dead letters (Action), recorded in the actions stream on
// ActionSubjectPrefix. The parts are packages of their own:
//
//   - dlq/index reads the DLQ and actions streams into the store;
//   - dlq/query runs the dashboard's reads over the index;
//   - dlq/redeliver redelivers and discards, one or many at a time;
//   - dlq/bulk runs bulk jobs through dlq/redeliver;
//   - dlq/redact masks header values and payload fields operators must
//     not read, before anything shows them.
//
// The envelope services write is in package deadletter. The DLQ and
// actions streams are the system of record; the index can be deleted and
// rebuilt from them at any time. No dlq package renders anything or
// writes SQL (store does).
package dlq
