package store

import (
	"context"
	"database/sql"
	"encoding/json"
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
		var rawStream, packed sql.RawBytes
		var ts int64
		if err := rows.Scan(&rawStream, &ts, &packed); err != nil {
			return fmt.Errorf("recent consumer samples: %w", err)
		}
		// The names come from the listing: millions of samples allocate
		// no strings of their own.
		st := listed[string(rawStream)]
		if st == nil {
			continue
		}
		at := time.UnixMilli(ts).UTC()
		err := eachPackedSample(packed, func(name []byte, v *[6]int64) {
			if consumer, ok := st.consumers[string(name)]; ok {
				fn(st.name, consumer, ConsumerPoint{At: at, NumPending: uint64(v[0]), NumAckPending: uint64(v[1]),
					NumRedelivered: uint64(v[2]), NumWaiting: uint64(v[3]), DeliveredSeq: uint64(v[4]), AckFloorSeq: uint64(v[5])})
			}
		})
		if err != nil {
			return fmt.Errorf("recent consumer samples of %s at %s: %w", st.name, at.Format(time.RFC3339), err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recent consumer samples: %w", err)
	}
	return nil
}

// recentConsumerSamples is RecentConsumerSamples' query: a range of the
// samples' primary key (res, ts, stream, first), in its order.
const recentConsumerSamples = `
	SELECT stream, ts, consumers FROM consumer_samples WHERE res = 0 AND ts >= ?
	ORDER BY res, ts, stream, first`

// eachPackedSample calls fn with each consumer's name and numbers of a
// row of consumer_samples (see migration 16), in their order. It reads
// only that shape, as SaveCycle and SQLite's JSON functions write it:
// 3,000,000 samples unpacked by SQLite's json_each took half as long
// again as before they were packed.
func eachPackedSample(data []byte, fn func(name []byte, v *[6]int64)) error {
	bad := func(what string, at int) error {
		return fmt.Errorf("packed consumer samples: %s at byte %d", what, at)
	}
	i := 0
	space := func() {
		for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
			i++
		}
	}
	expect := func(c byte) bool {
		space()
		if i < len(data) && data[i] == c {
			i++
			return true
		}
		return false
	}
	if !expect('{') {
		return bad("no object", i)
	}
	if expect('}') {
		return nil
	}
	var v [6]int64
	for {
		if !expect('"') {
			return bad("no name", i)
		}
		start, escaped := i, false
		for i < len(data) && data[i] != '"' {
			if data[i] == '\\' {
				escaped = true
				i++
			}
			i++
		}
		if i >= len(data) {
			return bad("unterminated name", start)
		}
		name := data[start:i]
		i++
		if escaped {
			var s string
			if err := json.Unmarshal(data[start-1:i], &s); err != nil {
				return bad("bad name", start)
			}
			name = []byte(s)
		}
		if !expect(':') || !expect('[') {
			return bad("no numbers", i)
		}
		for k := range v {
			if k > 0 && !expect(',') {
				return bad("too few numbers", i)
			}
			space()
			neg := i < len(data) && data[i] == '-'
			if neg {
				i++
			}
			digits := i
			var n int64
			for i < len(data) && data[i] >= '0' && data[i] <= '9' {
				n = n*10 + int64(data[i]-'0')
				i++
			}
			if i == digits {
				return bad("not a number", i)
			}
			if neg {
				n = -n
			}
			v[k] = n
		}
		if !expect(']') {
			return bad("too many numbers", i)
		}
		fn(name, &v)
		if expect('}') {
			return nil
		}
		if !expect(',') {
			return bad("no comma", i)
		}
	}
}

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
	rows, err := db.sql.QueryContext(ctx, `SELECT c.stream, c.name, c.own, COALESCE(json_extract(s.data, '$.durable'), 0),
		json_extract(c.data, '$.deleted_at') IS NOT NULL FROM `+consumersJoined)
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
