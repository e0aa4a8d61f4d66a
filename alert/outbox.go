package alert

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/ensure"
)

// OutboxConfig names the JetStream parts alerts use.
type OutboxConfig struct {
	// Stream is the work-queue stream of notifications still to send.
	// Defaults to JETWATCH_ALERTS_OUTBOX.
	Stream string
	// Prefix of the outbox subjects, <prefix>.<receiver>. Defaults to
	// jetwatch.alerts.outbox.
	Prefix string
	// Deliveries is the stream of delivery attempts, the record every
	// replica's delivery log is indexed from. Defaults to
	// JETWATCH_ALERT_DELIVERIES, on jetwatch.alerts.deliveries.>.
	Deliveries string
	// DeliveriesMaxAge bounds the delivery record. Defaults to 7 days.
	DeliveriesMaxAge time.Duration
	// Bucket is the KV bucket of firing episodes and silences. Defaults
	// to jetwatch_alerts.
	Bucket string
	// Replicas of the stream and bucket. Defaults to 1.
	Replicas int
	// DuplicateWindow of the outbox: the same transition published by
	// two replicas within it is stored once. Defaults to 10 minutes.
	DuplicateWindow time.Duration
}

func (c OutboxConfig) withDefaults() OutboxConfig {
	c.Stream = cmp.Or(c.Stream, DefaultOutboxStream)
	c.Prefix = cmp.Or(c.Prefix, DefaultOutboxPrefix)
	c.Bucket = cmp.Or(c.Bucket, DefaultStateBucket)
	c.Deliveries = cmp.Or(c.Deliveries, DefaultDeliveriesStream)
	c.DeliveriesMaxAge = cmp.Or(c.DeliveriesMaxAge, 7*24*time.Hour)
	c.Replicas = max(c.Replicas, 1)
	c.DuplicateWindow = cmp.Or(c.DuplicateWindow, 10*time.Minute)
	return c
}

// EnsureOutbox creates the outbox stream, the deliveries stream and the
// state bucket when they are missing, and returns the bucket. Existing ones are left as their
// owner configured them.
func EnsureOutbox(ctx context.Context, js jetstream.JetStream, cfg OutboxConfig) (jetstream.KeyValue, error) {
	cfg = cfg.withDefaults()
	if err := ensure.Stream(ctx, js, jetstream.StreamConfig{Name: cfg.Stream,
		Description: "Alert notifications still to send (jetwatch)", Subjects: []string{cfg.Prefix + ".>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		Duplicates: cfg.DuplicateWindow}); err != nil {
		return nil, err
	}
	if err := ensure.Stream(ctx, js, jetstream.StreamConfig{Name: cfg.Deliveries,
		Description: "Alert webhook delivery attempts (jetwatch)", Subjects: []string{deliveriesPrefix + ".>"},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		MaxAge: cfg.DeliveriesMaxAge}); err != nil {
		return nil, err
	}
	kv, err := ensure.KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: cfg.Bucket,
		Description: "Firing alerts and silences (jetwatch)", Storage: jetstream.FileStorage, Replicas: cfg.Replicas})
	if err != nil {
		return nil, fmt.Errorf("alert state bucket %s (allow $JS.API.STREAM.CREATE.KV_%s, or create the bucket yourself): %w", cfg.Bucket, cfg.Bucket, err)
	}
	return kv, nil
}
