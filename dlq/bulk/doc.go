// Package bulk runs bulk jobs on dead letters: redeliver or discard every
// dead letter a filter matched, throttled or not, resumed by any replica
// after a crash and never sending one twice. Jobs live in a KV bucket;
// each chunk goes through redeliver.Redeliverer.ActMany, so a bulk action has
// the same guarantees as one at a time. It reads the index through
// query.Queries and never writes SQL itself.
package bulk
