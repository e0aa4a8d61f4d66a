package store

import (
	"context"
	"fmt"
	"time"
)

// RecentConsumerSamples calls fn with the raw samples taken since since
// of every consumer the index lists, consumer by consumer (ordered by
// stream and name), oldest first: what the sampler's lag windows start
// from after a restart. One query, led by the consumers table so each
// consumer's samples are a range of the samples' primary key.
func (db *DB) RecentConsumerSamples(ctx context.Context, since time.Time, fn func(stream, consumer string, p ConsumerPoint)) error {
	rows, err := db.sql.QueryContext(ctx, recentConsumerSamples, since.UnixMilli())
	if err != nil {
		return fmt.Errorf("recent consumer samples: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var stream, consumer string
		var ts, p, ap, rd, w, ds, af int64
		if err := rows.Scan(&stream, &consumer, &ts, &p, &ap, &rd, &w, &ds, &af); err != nil {
			return fmt.Errorf("recent consumer samples: %w", err)
		}
		fn(stream, consumer, ConsumerPoint{At: time.UnixMilli(ts).UTC(), NumPending: uint64(p), NumAckPending: uint64(ap),
			NumRedelivered: uint64(rd), NumWaiting: uint64(w), DeliveredSeq: uint64(ds), AckFloorSeq: uint64(af)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recent consumer samples: %w", err)
	}
	return nil
}

// recentConsumerSamples is RecentConsumerSamples' query. CROSS JOIN keeps
// consumers the outer loop, so each consumer's samples are a range of the
// samples' primary key: the other way round would scan every raw sample of
// the last day.
const recentConsumerSamples = `
	SELECT s.stream, s.consumer, s.ts, s.num_pending, s.num_ack_pending, s.num_redelivered,
		s.num_waiting, s.delivered_seq, s.ack_floor_seq
	FROM consumers c CROSS JOIN consumer_samples s
		ON s.stream = c.stream AND s.consumer = c.name AND s.res = 0 AND s.ts >= ?
	ORDER BY c.stream, c.name, s.ts`

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
