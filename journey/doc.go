// Package journey follows the streams named by --journey-streams into the
// journey index (metadata of each message under its trace id and
// correlation values, never payloads), trims it to its retention, and
// reads a journey back: its messages, dead letters, redeliveries and
// breaker changes in time order. It reads NATS and writes through store;
// it never renders anything or publishes to a user stream.
package journey
