package alert

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/streamreader"

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
	return l.recordIn(ctx, l.db.SQL(), d)
}

// execer is a database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// recordIn stores an attempt unless a later one of the same notification
// is already there (the record stream and this replica may both bring it).
func (l *DeliveryLog) recordIn(ctx context.Context, db execer, d Delivery) error {
	_, err := db.ExecContext(ctx, `INSERT INTO alert_deliveries
		(id, receiver, rule, status, fingerprint, result, http_status, latency_ms, attempts, error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET result = excluded.result, http_status = excluded.http_status,
			latency_ms = excluded.latency_ms, attempts = excluded.attempts, error = excluded.error,
			updated_at = excluded.updated_at
		WHERE excluded.attempts > attempts OR (excluded.attempts = attempts AND excluded.updated_at >= updated_at)`,
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

// deliveriesPosition names the delivery log's place in the deliveries
// stream.
const deliveriesPosition = "alert-deliveries"

// DeliveryIndex follows the deliveries stream into the delivery log, so
// each replica's log shows what every replica sent, and a lost index is
// rebuilt from the stream.
type DeliveryIndex struct {
	log    *DeliveryLog
	js     jetstream.JetStream
	cfg    OutboxConfig
	logger *slog.Logger
	// follower follows the deliveries stream once Start made it.
	follower *streamreader.Follower[[]jetstream.Msg]
}

// NewDeliveryIndex returns an index of the deliveries stream into log.
// logger defaults to slog.Default().
func NewDeliveryIndex(js jetstream.JetStream, log *DeliveryLog, cfg OutboxConfig, logger *slog.Logger) *DeliveryIndex {
	logger = cmp.Or(logger, slog.Default())
	return &DeliveryIndex{log: log, js: js, cfg: cfg.withDefaults(), logger: logger.With("component", "alert-deliveries")}
}

// Start creates the streams when missing and follows the deliveries from
// where the index stopped, until Stop or ctx ends; a broken read is
// retried.
func (x *DeliveryIndex) Start(ctx context.Context) error {
	if _, err := EnsureOutbox(ctx, x.js, x.cfg); err != nil {
		return err
	}
	f, err := streamreader.NewFollower(x.js, streamreader.FollowerConfig[[]jetstream.Msg]{
		Stream: x.cfg.Deliveries, Batch: 200, Position: x.position, Handle: x.handle,
		What: "following the delivery log's stream", Logger: x.logger,
	})
	if err != nil {
		return err
	}
	x.follower = f
	f.Start(ctx)
	return nil
}

// Stop ends following. Safe to call twice, and without Start.
func (x *DeliveryIndex) Stop() {
	if x.follower != nil {
		x.follower.Stop()
	}
}

// position is the last delivery record indexed.
func (x *DeliveryIndex) position(ctx context.Context) (uint64, error) {
	pos, err := x.log.db.Position(ctx, deliveriesPosition)
	if err != nil {
		return 0, fmt.Errorf("read delivery log position: %w", err)
	}
	return pos, nil
}

// handle stores a batch of delivery records and the position after it in
// one transaction.
func (x *DeliveryIndex) handle(ctx context.Context, batch []jetstream.Msg) (bool, error) {
	if len(batch) == 0 {
		return false, nil
	}
	tx, err := x.log.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("index deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var last uint64
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			return false, err
		}
		last = md.Sequence.Stream
		var d Delivery
		if err := json.Unmarshal(m.Data(), &d); err != nil {
			x.logger.Warn("delivery record is not a delivery; skipped", "seq", last, "err", err)
			continue
		}
		d.Latency = time.Duration(d.LatencyMS) * time.Millisecond
		if err := x.log.recordIn(ctx, tx, d); err != nil {
			return false, err
		}
	}
	if err := store.SetPosition(ctx, tx, deliveriesPosition, last); err != nil {
		return false, err
	}
	return false, tx.Commit()
}
