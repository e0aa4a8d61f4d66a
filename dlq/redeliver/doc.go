// Package redeliver acts on dead letters: it redelivers them (one at a
// time, edited or not, or many at once for a bulk job) to the subject they
// came from or another the target policy allows, and discards them. Every
// action is recorded in the actions stream around the send, each record
// expecting the dead letter's last one, so that of two replicas acting at
// once exactly one wins and a message is sent at most once (see
// serialize.go). The index applies the records; this package reads dead
// letters through dlq/query and writes no SQL.
package redeliver
