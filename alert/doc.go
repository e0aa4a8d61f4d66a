// Package alert owns alert rules and their webhooks: it loads the rules
// file, evaluates each rule on an interval over the SQLite index the
// collectors fill (consumers, streams, breakers, the advisory timeline and
// dead letters), moves each rule instance through pending, firing and
// resolved, and publishes every notification to a work-queue stream (the
// outbox). A sender shared by all jetwatch replicas through one durable
// consumer signs each notification and posts it to its receiver, with
// retries, and records every attempt in a stream that each replica's
// delivery log is indexed from.
//
// Firing episodes, silences and acknowledgements live in a JetStream KV
// bucket, so they survive a restart and replicas agree on them. The
// package reads the index; it never writes the collectors' tables and
// never talks to the web layer (web declares the interface it needs).
package alert
