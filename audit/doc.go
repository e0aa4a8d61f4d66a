// Package audit is jetwatch's record of who did what: every redelivery,
// edit, discard, bulk job, sign-in, token use and payload view. Entries
// are events in a JetStream stream (JETWATCH_AUDIT), so the record
// survives losing jetwatch's disk; SQLite holds an index of them for the
// audit page and API, rebuilt from the stream like the dead-letter index.
//
// Entries never carry payloads, passwords or tokens: only names of what
// was touched and how it went.
package audit
