// Package query runs the dashboard's reads of dead letters: lists, counts
// and groups over the index, a dead letter's history of actions, and its
// headers and payload, which the index does not keep and Get reads from
// the DLQ stream.
package query
