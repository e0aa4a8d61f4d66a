// Package streambrowse reads a stream's messages for an operator to look
// at, without consuming anything: it asks for stored messages by sequence
// (direct gets when the stream allows them, else the stream's message-get
// API), never through a consumer, so WorkQueue and Interest streams keep
// every message and every consumer keeps its state.
//
// It decides nothing about who may see what: web applies roles,
// --hide-payloads, redaction and the audit log to what it returns. It
// writes nothing to NATS and nothing to the store.
package streambrowse
