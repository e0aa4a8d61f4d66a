package alert

import (
	"cmp"
	"context"
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
	return l.db.RecordAlertDelivery(ctx, d.row())
}

// row is d as the index keeps it.
func (d Delivery) row() store.AlertDelivery {
	return store.AlertDelivery{ID: d.ID, Receiver: d.Receiver, Rule: d.Rule, Status: d.Status, Fingerprint: d.Fingerprint,
		Result: d.Result, HTTPStatus: d.HTTPStatus, Latency: d.Latency, Attempts: d.Attempts, Error: d.Error,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// Recent returns the latest deliveries, newest attempt first.
func (l *DeliveryLog) Recent(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := l.db.AlertDeliveries(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = Delivery{ID: r.ID, Receiver: r.Receiver, Rule: r.Rule, Status: r.Status, Fingerprint: r.Fingerprint,
			Result: r.Result, HTTPStatus: r.HTTPStatus, Latency: r.Latency, LatencyMS: r.Latency.Milliseconds(),
			Attempts: r.Attempts, Error: r.Error, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	}
	return out, nil
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
	var last uint64
	rows := make([]store.AlertDelivery, 0, len(batch))
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
		rows = append(rows, d.row())
	}
	return false, x.log.db.RecordAlertDeliveries(ctx, rows, deliveriesPosition, last)
}
