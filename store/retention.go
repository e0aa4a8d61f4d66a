package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Retention says how long each resolution of history is kept. Raw samples
// older than Raw become five-minute buckets, those older than FiveMinute
// become hourly buckets, and hourly buckets older than Hourly are deleted.
// Buckets keep the maximum of gauges, so lag spikes survive downsampling.
type Retention struct {
	// Raw is how long raw samples are kept. Defaults to 24 hours.
	Raw time.Duration
	// FiveMinute is how long five-minute buckets are kept. Defaults to 7 days.
	FiveMinute time.Duration
	// Hourly is how long hourly buckets are kept. Defaults to 30 days.
	Hourly time.Duration
}

// WithDefaults fills unset fields and checks the tiers are ordered.
func (r Retention) WithDefaults() (Retention, error) {
	r.Raw = cmp.Or(r.Raw, 24*time.Hour)
	r.FiveMinute = cmp.Or(r.FiveMinute, 7*24*time.Hour)
	r.Hourly = cmp.Or(r.Hourly, 30*24*time.Hour)
	if r.Raw > r.FiveMinute || r.FiveMinute > r.Hourly {
		return r, fmt.Errorf("history retention must grow with coarseness: raw %s <= 5m %s <= 1h %s", r.Raw, r.FiveMinute, r.Hourly)
	}
	return r, nil
}

// CompactResult counts what Compact changed.
type CompactResult struct {
	Downsampled int64 // rows folded into coarser buckets
	Deleted     int64 // rows dropped past the last tier
	// Records are breaker transitions and alert deliveries dropped:
	// older than the last tier, or a breaker's beyond
	// MaxBreakerTransitions.
	Records int64
}

// MaxBreakerTransitions is how many transitions Compact keeps of one
// breaker, the newest. Services report their own breakers, so one that
// flaps every few seconds (or a report written to flap) would otherwise
// add rows as fast as it is written for the whole of Hourly; 10,000 is
// days of a breaker probing every 30 s.
const MaxBreakerTransitions = 10_000

// Compact downsamples and expires history as of now, in one transaction.
func (db *DB) Compact(ctx context.Context, now time.Time, r Retention) (CompactResult, error) {
	var res CompactResult
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("compact history: %w", err)
	}
	defer tx.Rollback()

	steps := []struct {
		from, to  int64 // resolution in seconds
		olderThan time.Duration
	}{
		{0, 300, r.Raw},
		{300, 3600, r.FiveMinute},
	}
	for _, s := range steps {
		bucketMs := s.to * 1000
		// Align the cutoff to a bucket boundary so no bucket is built from
		// half of its samples.
		cutoff := now.Add(-s.olderThan).UnixMilli() / bucketMs * bucketMs
		if _, err := tx.ExecContext(ctx, `
			INSERT OR REPLACE INTO stream_samples (stream, res, ts, messages, bytes, first_seq, last_seq, deleted, consumers)
			SELECT stream, ?1, (ts / ?2) * ?2, MAX(messages), MAX(bytes), MAX(first_seq), MAX(last_seq), MAX(deleted), MAX(consumers)
			FROM stream_samples WHERE res = ?3 AND ts < ?4 GROUP BY stream, ts / ?2`,
			s.to, bucketMs, s.from, cutoff); err != nil {
			return res, fmt.Errorf("downsample stream history: %w", err)
		}
		if err := downsampleConsumerSamples(ctx, tx, s.from, s.to, cutoff); err != nil {
			return res, err
		}
		for _, table := range []string{"stream_samples", "consumer_samples"} {
			r, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE res = ? AND ts < ?`, s.from, cutoff)
			if err != nil {
				return res, fmt.Errorf("downsample %s: %w", table, err)
			}
			n, _ := r.RowsAffected()
			res.Downsampled += n
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT OR IGNORE INTO sample_times (ts, res)
			SELECT DISTINCT (ts / ?2) * ?2, ?1 FROM sample_times WHERE res = ?3 AND ts < ?4`,
			s.to, bucketMs, s.from, cutoff); err != nil {
			return res, fmt.Errorf("downsample sample times: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sample_times WHERE res = ? AND ts < ?`, s.from, cutoff); err != nil {
			return res, fmt.Errorf("downsample sample times: %w", err)
		}
	}
	cutoff := now.Add(-r.Hourly).UnixMilli()
	for _, table := range []string{"stream_samples", "consumer_samples", "sample_times"} {
		// Naming every resolution makes each a range of the primary key.
		r, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE res IN (0, 300, 3600) AND ts < ?`, cutoff)
		if err != nil {
			return res, fmt.Errorf("expire %s: %w", table, err)
		}
		if table != "sample_times" {
			n, _ := r.RowsAffected()
			res.Deleted += n
		}
	}
	// Breaker transitions and alert deliveries are history too.
	for _, q := range []string{
		`DELETE FROM breaker_transitions WHERE at < ?1`,
		`DELETE FROM breaker_transitions WHERE id IN (SELECT id FROM (SELECT id,
			row_number() OVER (PARTITION BY service, breaker ORDER BY id DESC) AS n FROM breaker_transitions) WHERE n > ?2)`,
		`DELETE FROM alert_deliveries WHERE updated_at < ?1`,
	} {
		r, err := tx.ExecContext(ctx, q, cutoff, MaxBreakerTransitions)
		if err != nil {
			return res, fmt.Errorf("expire records: %w", err)
		}
		n, _ := r.RowsAffected()
		res.Records += n
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("compact history: %w", err)
	}
	return res, nil
}

// downsampleConsumerSamples folds the consumer samples of resolution from
// older than cutoff into buckets of resolution to, each consumer's maximum
// of each number, a stream's consumers in one row (first empty). The rows
// are unpacked in Go, a bucket at a time: SQLite's json_each took 5.2 s of
// CPU for 5 minutes of 10,000 x 10 samples. The caller deletes the rows
// folded.
func downsampleConsumerSamples(ctx context.Context, tx *sql.Tx, from, to, cutoff int64) error {
	ins, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO consumer_samples (res, ts, stream, first, consumers) VALUES (?, ?, ?, '', ?)`)
	if err != nil {
		return fmt.Errorf("downsample consumer history: %w", err)
	}
	defer ins.Close()
	bucketMs := to * 1000
	// The bucket being folded: stream -> consumer -> maxima. Rows come in
	// time order, so a bucket is complete when the next one starts.
	bucket := int64(-1)
	folded := map[string]map[string]*[6]int64{}
	var buf []byte
	flush := func() error {
		for stream, consumers := range folded {
			buf = append(buf[:0], '{')
			for i, name := range slices.Sorted(maps.Keys(consumers)) {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendString(buf, name)
				buf = append(buf, ':', '[')
				for k, n := range consumers[name] {
					if k > 0 {
						buf = append(buf, ',')
					}
					buf = strconv.AppendInt(buf, n, 10)
				}
				buf = append(buf, ']')
			}
			buf = append(buf, '}')
			if _, err := ins.ExecContext(ctx, to, bucket, stream, string(buf)); err != nil {
				return fmt.Errorf("downsample consumer history of %s: %w", stream, err)
			}
		}
		clear(folded)
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT ts, stream, consumers FROM consumer_samples WHERE res = ? AND ts < ?
		ORDER BY res, ts, stream, first`, from, cutoff)
	if err != nil {
		return fmt.Errorf("downsample consumer history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ts int64
		var stream string
		var packed sql.RawBytes
		if err := rows.Scan(&ts, &stream, &packed); err != nil {
			return fmt.Errorf("downsample consumer history: %w", err)
		}
		if b := ts / bucketMs * bucketMs; b != bucket {
			if err := flush(); err != nil {
				return err
			}
			bucket = b
		}
		consumers := folded[stream]
		if consumers == nil {
			consumers = map[string]*[6]int64{}
			folded[stream] = consumers
		}
		err := eachPackedSample(packed, func(name []byte, v *[6]int64) {
			m := consumers[string(name)]
			if m == nil {
				c := *v
				consumers[string(name)] = &c
				return
			}
			for k := range m {
				m[k] = max(m[k], v[k])
			}
		})
		if err != nil {
			return fmt.Errorf("downsample consumer history of %s: %w", stream, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("downsample consumer history: %w", err)
	}
	return flush()
}
