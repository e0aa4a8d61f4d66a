package store

import (
	"cmp"
	"context"
	"fmt"
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
}

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
		// A bucket holds each of a stream's consumers once, in one row.
		if _, err := tx.ExecContext(ctx, `
			INSERT OR REPLACE INTO consumer_samples (res, ts, stream, first, consumers)
			SELECT ?1, bucket, stream, '', json_group_object(name, json_array(p, ap, rd, w, ds, af))
			FROM (
				SELECT s.stream, (s.ts / ?2) * ?2 AS bucket, j.key AS name, MAX(j.value ->> 0) AS p,
					MAX(j.value ->> 1) AS ap, MAX(j.value ->> 2) AS rd, MAX(j.value ->> 3) AS w,
					MAX(j.value ->> 4) AS ds, MAX(j.value ->> 5) AS af
				FROM consumer_samples s CROSS JOIN json_each(s.consumers) j
				WHERE s.res = ?3 AND s.ts < ?4 GROUP BY s.stream, bucket, j.key)
			GROUP BY stream, bucket`,
			s.to, bucketMs, s.from, cutoff); err != nil {
			return res, fmt.Errorf("downsample consumer history: %w", err)
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
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("compact history: %w", err)
	}
	return res, nil
}
