// Package index reads the DLQ stream in order into the store, and the
// actions stream after it, so that each dead letter's row says what was
// done to it. Its position is stored with the rows, so a restart neither
// loses nor repeats a dead letter; a message it cannot store is recorded
// as unindexable and passed. Status says how far it is behind and why it
// stalls. The streams are the system of record: Reset and CatchUp rebuild
// the index from them.
package index
