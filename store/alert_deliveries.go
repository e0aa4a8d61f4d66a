package store

import (
	"context"
	"fmt"
	"time"
)

// AlertDelivery is one notification in the delivery log, as of its last
// attempt.
type AlertDelivery struct {
	ID          string
	Receiver    string
	Rule        string
	Status      string
	Fingerprint string
	Result      string
	HTTPStatus  int
	Latency     time.Duration
	Attempts    int
	Error       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const recordDelivery = `INSERT INTO alert_deliveries
	(id, receiver, rule, status, fingerprint, result, http_status, latency_ms, attempts, error, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET result = excluded.result, http_status = excluded.http_status,
		latency_ms = excluded.latency_ms, attempts = excluded.attempts, error = excluded.error,
		updated_at = excluded.updated_at
	WHERE excluded.attempts > attempts OR (excluded.attempts = attempts AND excluded.updated_at >= updated_at)`

func deliveryArgs(d AlertDelivery) []any {
	return []any{d.ID, d.Receiver, d.Rule, d.Status, d.Fingerprint, d.Result, d.HTTPStatus, d.Latency.Milliseconds(), d.Attempts,
		d.Error, d.CreatedAt.UnixMilli(), d.UpdatedAt.UnixMilli()}
}

// RecordAlertDelivery stores an attempt unless a later one of the same
// notification is there already (the deliveries stream and this replica
// may both bring it).
func (db *DB) RecordAlertDelivery(ctx context.Context, d AlertDelivery) error {
	if _, err := db.sql.ExecContext(ctx, recordDelivery, deliveryArgs(d)...); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}

// RecordAlertDeliveries is RecordAlertDelivery for a batch read from the
// deliveries stream, moving the position named positionKey to pos in the
// same transaction.
func (db *DB) RecordAlertDeliveries(ctx context.Context, ds []AlertDelivery, positionKey string, pos uint64) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, d := range ds {
		if _, err := tx.ExecContext(ctx, recordDelivery, deliveryArgs(d)...); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
	}
	if err := setPosition(ctx, tx, positionKey, pos); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index deliveries: %w", err)
	}
	return nil
}

// AlertDeliveries returns the latest deliveries (1 to 1,000), newest
// attempt first.
func (db *DB) AlertDeliveries(ctx context.Context, limit int) ([]AlertDelivery, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, receiver, rule, status, fingerprint, result, http_status,
		latency_ms, attempts, error, created_at, updated_at FROM alert_deliveries ORDER BY updated_at DESC, id LIMIT ?`,
		min(max(limit, 1), 1000))
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []AlertDelivery
	for rows.Next() {
		var d AlertDelivery
		var latency, created, updated int64
		if err := rows.Scan(&d.ID, &d.Receiver, &d.Rule, &d.Status, &d.Fingerprint, &d.Result, &d.HTTPStatus,
			&latency, &d.Attempts, &d.Error, &created, &updated); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Latency = time.Duration(latency) * time.Millisecond
		d.CreatedAt, d.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
