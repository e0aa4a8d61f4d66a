package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// Delivery results.
const (
	ResultDelivered = "delivered"
	ResultRetrying  = "retrying"
	ResultFailed    = "failed"
	ResultDropped   = "dropped"
)

// Delivery is one notification in the delivery log, as of its last attempt.
type Delivery struct {
	ID          string        `json:"id"`
	Receiver    string        `json:"receiver"`
	Rule        string        `json:"rule"`
	Status      string        `json:"status"`
	Fingerprint string        `json:"fingerprint"`
	Result      string        `json:"result"`
	HTTPStatus  int           `json:"http_status,omitempty"`
	Latency     time.Duration `json:"-"`
	LatencyMS   int64         `json:"latency_ms"`
	Attempts    int           `json:"attempts"`
	Error       string        `json:"error,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

// DeliveryLog is the delivery log in the SQLite index.
type DeliveryLog struct{ db *store.DB }

// NewDeliveryLog returns the delivery log kept in db.
func NewDeliveryLog(db *store.DB) *DeliveryLog { return &DeliveryLog{db: db} }

// record stores the outcome of an attempt.
func (l *DeliveryLog) record(ctx context.Context, d Delivery) error {
	_, err := l.db.SQL().ExecContext(ctx, `INSERT INTO alert_deliveries
		(id, receiver, rule, status, fingerprint, result, http_status, latency_ms, attempts, error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET result = excluded.result, http_status = excluded.http_status,
			latency_ms = excluded.latency_ms, attempts = MAX(attempts, excluded.attempts), error = excluded.error,
			updated_at = excluded.updated_at`,
		d.ID, d.Receiver, d.Rule, d.Status, d.Fingerprint, d.Result, d.HTTPStatus, d.Latency.Milliseconds(), d.Attempts,
		d.Error, d.CreatedAt.UnixMilli(), d.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}

// Recent returns the latest deliveries, newest attempt first.
func (l *DeliveryLog) Recent(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := l.db.SQL().QueryContext(ctx, `SELECT id, receiver, rule, status, fingerprint, result, http_status,
		latency_ms, attempts, error, created_at, updated_at FROM alert_deliveries ORDER BY updated_at DESC, id LIMIT ?`,
		min(max(limit, 1), 1000))
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var created, updated int64
		if err := rows.Scan(&d.ID, &d.Receiver, &d.Rule, &d.Status, &d.Fingerprint, &d.Result, &d.HTTPStatus,
			&d.LatencyMS, &d.Attempts, &d.Error, &created, &updated); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Latency = time.Duration(d.LatencyMS) * time.Millisecond
		d.CreatedAt, d.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
