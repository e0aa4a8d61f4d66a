package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Event severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Event is one entry of the advisory timeline.
type Event struct {
	ID       uint64    `json:"id"`
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Stream   string    `json:"stream,omitempty"`
	Consumer string    `json:"consumer,omitempty"`
	Severity string    `json:"severity"`
	Summary  string    `json:"summary"`
	// DeadLetterID is the dead letter a max_deliver or terminated event
	// became, when the index holds it; 0 otherwise.
	DeadLetterID uint64 `json:"dead_letter_id,omitempty"`
	// AdvisoryID is the advisory's own id: one advisory stored twice in
	// the capture stream (the server's and the relay's copy) is one event.
	AdvisoryID string `json:"-"`
}

// EventFilter narrows the timeline; zero fields match everything.
type EventFilter struct {
	Stream   string
	Consumer string
	Kind     string
	Severity string
	Since    time.Time
	Until    time.Time
	// Before is a keyset cursor: only events with a smaller id.
	Before uint64
	// HideOwn leaves out events about jetwatch's own streams and
	// consumers (its KV watchers and readers come and go all the time),
	// except advisories the bridge rejected.
	HideOwn bool
	// Limit defaults to 100.
	Limit int
}

// Events returns the newest events matching f, newest first.
func (db *DB) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Stream != "" {
		add("stream = ?", f.Stream)
	}
	if f.Consumer != "" {
		add("consumer = ?", f.Consumer)
	}
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("at <= ?", f.Until.UnixMilli())
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if f.HideOwn {
		// A rejected advisory naming jetwatch's stream is someone else's
		// doing (a forgery aimed at it), not jetwatch's churn: it stays.
		where = append(where, "(kind = '"+EventAdvisoryRejected+"' OR NOT "+ownEventSQL+")")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT id, kind, at, stream, consumer, severity, summary, ` + eventDeadLetterSQL + ` FROM events e`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var dl sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Kind, &at, &e.Stream, &e.Consumer, &e.Severity, &e.Summary, &dl); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		e.DeadLetterID = uint64(dl.Int64)
		out = append(out, e)
	}
	return out, rows.Err()
}

// eventDeadLetterSQL finds the dead letter a max_deliver or terminated
// event became: same stream, consumer and stream sequence, failed within
// ten minutes of the advisory (a service dead-letters before it
// terminates; the bridge copies after), so the lookup is a short range of
// the dead_letters_stream index.
const eventDeadLetterSQL = `CASE WHEN e.kind IN ('max_deliver', 'terminated') THEN (SELECT d.id FROM dead_letters d
	WHERE d.stream = e.stream AND d.consumer = e.consumer AND d.failed_at BETWEEN e.at - 600000 AND e.at + 600000
		AND d.stream_seq = CASE WHEN json_valid(e.data) THEN json_extract(e.data, '$.stream_seq') END ORDER BY d.id LIMIT 1) END`

// RecordEvent stores e under its id, the advisory stream sequence of the
// advisory it is about, with data, the advisory as received. A verdict on
// an advisory (the bridge rejected it) replaces what the timeline stored
// from the advisory's own claims, and the timeline, which never
// overwrites, keeps the verdict when it comes second.
func (db *DB) RecordEvent(ctx context.Context, e Event, data string) error {
	_, err := db.sql.ExecContext(ctx, `INSERT INTO events (id, kind, at, stream, consumer, severity, summary, data, advisory_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''))
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, stream = excluded.stream, consumer = excluded.consumer,
			severity = excluded.severity, summary = excluded.summary
		ON CONFLICT (advisory_id) WHERE advisory_id IS NOT NULL DO UPDATE SET kind = excluded.kind, stream = excluded.stream,
			consumer = excluded.consumer, severity = excluded.severity, summary = excluded.summary`,
		e.ID, e.Kind, e.At.UnixMilli(), e.Stream, e.Consumer, e.Severity, e.Summary, data, e.AdvisoryID)
	if err != nil {
		return fmt.Errorf("record event %d: %w", e.ID, err)
	}
	return nil
}

// ResetEvents forgets the advisory timeline, and the
// position named positionKey, so the timeline rebuilds from the start of
// the capture stream.
func (db *DB) ResetEvents(ctx context.Context, positionKey string) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset the advisory timeline: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM events`); err != nil {
		return fmt.Errorf("reset the advisory timeline: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM stream_positions WHERE name = ?`, positionKey); err != nil {
		return fmt.Errorf("reset the advisory timeline: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reset the advisory timeline: %w", err)
	}
	return nil
}

// AdvisoryEvent is an event of the advisory timeline as the timeline reads
// it from the capture stream: its data and the advisory's own id (which
// makes the relay's copy and the original one event, whichever comes
// first).
type AdvisoryEvent struct {
	Event
	Data string
}

// InsertAdvisoryEvents stores events, each advisory once, and moves the
// position named positionKey to pos, in one transaction. It returns the
// events it stored.
func (db *DB) InsertAdvisoryEvents(ctx context.Context, events []AdvisoryEvent, positionKey string, pos uint64) ([]Event, error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store advisories: %w", err)
	}
	defer tx.Rollback()
	var stored []Event
	for _, e := range events {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO events (id, kind, at, stream, consumer, severity, summary, data, advisory_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Kind, e.At.UnixMilli(), e.Stream, e.Consumer, e.Severity, e.Summary, e.Data,
			e.AdvisoryID)
		if err != nil {
			return nil, fmt.Errorf("store advisory %d: %w", e.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		stored = append(stored, e.Event)
	}
	if err := setPosition(ctx, tx, positionKey, pos); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store advisories: %w", err)
	}
	return stored, nil
}

// TrimEvents deletes the events of advisories below seq (their advisory
// stream sequence), at most limit of them, oldest first, and says how many
// went. The timeline passes the first sequence its stream still holds, so
// it covers what the stream does, whatever bounds it (age, size, a purge),
// and advisories flooding in cannot grow the index past the stream's own
// limits. A call holds the database for one batch: call again while it
// deletes limit.
func (db *DB) TrimEvents(ctx context.Context, seq uint64, limit int) (int64, error) {
	res, err := db.sql.ExecContext(ctx, `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ? ORDER BY id LIMIT ?)`,
		seq, max(limit, 1))
	if err != nil {
		return 0, fmt.Errorf("trim the advisory timeline: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
