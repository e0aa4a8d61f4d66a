package store

import (
	"context"
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
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT id, kind, at, stream, consumer, severity, summary FROM events`
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
		if err := rows.Scan(&e.ID, &e.Kind, &at, &e.Stream, &e.Consumer, &e.Severity, &e.Summary); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

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
