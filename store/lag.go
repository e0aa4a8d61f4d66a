package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RecentConsumerSamples calls fn with the raw samples taken since since
// of every consumer the index lists, in time order (so each consumer's
// oldest first): what the sampler's lag windows start from after a
// restart. Samples are stored in time order, so this is one range of the
// samples' primary key, read in order; which consumers the index lists is
// read first, rather than looked up for each sample.
func (db *DB) RecentConsumerSamples(ctx context.Context, since time.Time, fn func(stream, consumer string, p ConsumerPoint)) error {
	listed, err := db.listedConsumers(ctx)
	if err != nil {
		return fmt.Errorf("recent consumer samples: %w", err)
	}
	rows, err := db.sql.QueryContext(ctx, recentConsumerSamples, since.UnixMilli())
	if err != nil {
		return fmt.Errorf("recent consumer samples: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rawStream, rawConsumer sql.RawBytes
		var ts, p, ap, rd, w, ds, af int64
		if err := rows.Scan(&rawStream, &rawConsumer, &ts, &p, &ap, &rd, &w, &ds, &af); err != nil {
			return fmt.Errorf("recent consumer samples: %w", err)
		}
		// The names come from the listing: millions of samples allocate
		// no strings of their own.
		st := listed[string(rawStream)]
		if st == nil {
			continue
		}
		consumer, ok := st.consumers[string(rawConsumer)]
		if !ok {
			continue
		}
		fn(st.name, consumer, ConsumerPoint{At: time.UnixMilli(ts).UTC(), NumPending: uint64(p), NumAckPending: uint64(ap),
			NumRedelivered: uint64(rd), NumWaiting: uint64(w), DeliveredSeq: uint64(ds), AckFloorSeq: uint64(af)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recent consumer samples: %w", err)
	}
	return nil
}

// recentConsumerSamples is RecentConsumerSamples' query: a range of the
// samples' primary key (res, ts, stream, consumer), in its order.
const recentConsumerSamples = `
	SELECT stream, consumer, ts, num_pending, num_ack_pending, num_redelivered,
		num_waiting, delivered_seq, ack_floor_seq
	FROM consumer_samples WHERE res = 0 AND ts >= ?
	ORDER BY res, ts, stream, consumer`

// listedStream is a stream the index lists and its consumers' names.
type listedStream struct {
	name      string
	consumers map[string]string
}

// listedConsumers lists the consumers the index holds, by stream.
func (db *DB) listedConsumers(ctx context.Context) (map[string]*listedStream, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT stream, name FROM consumers`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*listedStream{}
	for rows.Next() {
		var stream, name string
		if err := rows.Scan(&stream, &name); err != nil {
			return nil, err
		}
		st := out[stream]
		if st == nil {
			st = &listedStream{name: stream, consumers: map[string]string{}}
			out[stream] = st
		}
		st.consumers[name] = name
	}
	return out, rows.Err()
}

// ConsumerKind is what the sampler's lag windows need to know of a stored
// consumer before it is read again.
type ConsumerKind struct {
	Stream, Name string
	// Durable and Own say whether it is meant to stay: a durable that is
	// not jetwatch's.
	Durable, Own bool
	// Deleted is set when it is stored as deleted (DeletedAt).
	Deleted bool
}

// ConsumerKinds lists every stored consumer's kind, without decoding each
// row: at 100,000 consumers that would take the best part of a second.
func (db *DB) ConsumerKinds(ctx context.Context) ([]ConsumerKind, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT stream, name, own, COALESCE(json_extract(data, '$.durable'), 0),
		json_extract(data, '$.deleted_at') IS NOT NULL FROM consumers`)
	if err != nil {
		return nil, fmt.Errorf("consumer kinds: %w", err)
	}
	defer rows.Close()
	var out []ConsumerKind
	for rows.Next() {
		var k ConsumerKind
		if err := rows.Scan(&k.Stream, &k.Name, &k.Own, &k.Durable, &k.Deleted); err != nil {
			return nil, fmt.Errorf("consumer kinds: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consumer kinds: %w", err)
	}
	return out, nil
}
