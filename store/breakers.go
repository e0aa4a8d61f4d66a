package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Breaker states.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// Breaker is a service's circuit breaker as it last reported itself.
type Breaker struct {
	Service  string `json:"service"`
	Breaker  string `json:"breaker"`
	Stream   string `json:"stream,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	State    string `json:"state"`
	// Since is when the breaker's episode began: for an open or half-open
	// breaker, the first open of the outage (half-open probes that fail
	// and open it again do not restart it); for a closed one, when it
	// closed.
	Since time.Time `json:"since"`
	// StateSince is when the current state began, as the service
	// reported it: the latest probe of an outage.
	StateSince       time.Time `json:"state_since"`
	Failures         uint32    `json:"consecutive_failures"`
	TotalFailures    uint32    `json:"total_failures"`
	Requests         uint32    `json:"requests"`
	LastError        string    `json:"last_error,omitempty"`
	Instance         string    `json:"instance"`
	HeartbeatSeconds float64   `json:"heartbeat_seconds"`
	UpdatedAt        time.Time `json:"updated_at"`
	// Stale is set when read: no report for three heartbeats, so the
	// service is probably gone and the state may be old.
	Stale bool `json:"stale"`
}

// BreakerTransition is one change of a breaker's state.
type BreakerTransition struct {
	Service string    `json:"service"`
	Breaker string    `json:"breaker"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	At      time.Time `json:"at"`
}

// SaveBreaker stores a report and, when the state changed, a transition.
// It returns the transition, or nil. b.Since is when b.State began, as the
// service reports it; the index keeps that as StateSince and sets Since to
// the start of the episode (see Breaker.Since), so an outage whose probes
// fail is one outage, since its first open.
func (db *DB) SaveBreaker(ctx context.Context, b Breaker) (*BreakerTransition, error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("save breaker: %w", err)
	}
	defer tx.Rollback()
	var prev string
	var prevSince int64
	err = tx.QueryRowContext(ctx, `SELECT state, since FROM breakers WHERE service = ? AND breaker = ?`, b.Service, b.Breaker).Scan(&prev, &prevSince)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("save breaker: %w", err)
	}
	b.Stale = false
	b.StateSince = b.Since
	if prev != "" && isDown(prev) == isDown(b.State) {
		// Still the same episode: open and half-open alike are one outage.
		b.Since = time.UnixMilli(prevSince).UTC()
	}
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("save breaker: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO breakers (service, breaker, state, since, updated_at, data) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (service, breaker) DO UPDATE SET state = excluded.state, since = excluded.since,
			updated_at = excluded.updated_at, data = excluded.data`,
		b.Service, b.Breaker, b.State, b.Since.UnixMilli(), b.UpdatedAt.UnixMilli(), data); err != nil {
		return nil, fmt.Errorf("save breaker: %w", err)
	}
	var tr *BreakerTransition
	if prev != b.State {
		from := prev
		if from == "" {
			from = "unknown"
		}
		tr = &BreakerTransition{Service: b.Service, Breaker: b.Breaker, From: from, To: b.State, At: b.StateSince}
		if _, err := tx.ExecContext(ctx, `INSERT INTO breaker_transitions (service, breaker, from_state, to_state, at) VALUES (?, ?, ?, ?, ?)`,
			b.Service, b.Breaker, from, b.State, b.StateSince.UnixMilli()); err != nil {
			return nil, fmt.Errorf("save breaker transition: %w", err)
		}
	}
	return tr, tx.Commit()
}

// DeleteBreaker forgets a breaker (its report was deleted). Its
// transitions stay, as history, until Compact expires them.
func (db *DB) DeleteBreaker(ctx context.Context, service, breaker string) error {
	if _, err := db.sql.ExecContext(ctx, `DELETE FROM breakers WHERE service = ? AND breaker = ?`, service, breaker); err != nil {
		return fmt.Errorf("delete breaker %s/%s: %w", service, breaker, err)
	}
	return nil
}

// isDown says whether a breaker in state refuses calls: open, or half open
// (letting a probe through).
func isDown(state string) bool { return state == BreakerOpen || state == BreakerHalfOpen }

// Breakers returns every breaker, open ones first, with Stale judged at now.
func (db *DB) Breakers(ctx context.Context, now time.Time) ([]Breaker, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT data FROM breakers
		ORDER BY CASE state WHEN 'open' THEN 0 WHEN 'half-open' THEN 1 ELSE 2 END, service, breaker`)
	if err != nil {
		return nil, fmt.Errorf("list breakers: %w", err)
	}
	out, err := scanJSON[Breaker](rows, "list breakers")
	for i := range out {
		hb := time.Duration(out[i].HeartbeatSeconds * float64(time.Second))
		out[i].Stale = hb > 0 && now.Sub(out[i].UpdatedAt) > 3*hb
	}
	return out, err
}

// BreakerTransitions returns the latest transitions, newest first; empty
// service and breaker mean all.
func (db *DB) BreakerTransitions(ctx context.Context, service, breaker string, limit int) ([]BreakerTransition, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT service, breaker, from_state, to_state, at FROM breaker_transitions
		WHERE (? = '' OR service = ?) AND (? = '' OR breaker = ?) ORDER BY id DESC LIMIT ?`,
		service, service, breaker, breaker, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("breaker transitions: %w", err)
	}
	defer rows.Close()
	var out []BreakerTransition
	for rows.Next() {
		var t BreakerTransition
		var at int64
		if err := rows.Scan(&t.Service, &t.Breaker, &t.From, &t.To, &at); err != nil {
			return nil, fmt.Errorf("breaker transitions: %w", err)
		}
		t.At = time.UnixMilli(at).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

// BreakerHistory returns a breaker's transitions from since on, oldest
// first, led by the last one before since, which says the state the window
// starts in. At most limit are returned: the latest ones.
func (db *DB) BreakerHistory(ctx context.Context, service, breaker string, since time.Time, limit int) ([]BreakerTransition, error) {
	// Newest first by the (service, breaker, id) index, stopping at the
	// first before since: a long-lived breaker's old history is not read.
	rows, err := db.sql.QueryContext(ctx, `SELECT from_state, to_state, at FROM breaker_transitions
		WHERE service = ? AND breaker = ? ORDER BY id DESC`, service, breaker)
	if err != nil {
		return nil, fmt.Errorf("breaker history: %w", err)
	}
	defer rows.Close()
	var out []BreakerTransition
	for len(out) < max(limit, 1) && rows.Next() {
		t := BreakerTransition{Service: service, Breaker: breaker}
		var at int64
		if err := rows.Scan(&t.From, &t.To, &at); err != nil {
			return nil, fmt.Errorf("breaker history: %w", err)
		}
		t.At = time.UnixMilli(at).UTC()
		out = append(out, t)
		if t.At.Before(since) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("breaker history: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}
