package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// deadLetterDesk is the bridge, the dead-letter index and the advisory
// timeline, started together once jetwatch's streams exist.
type deadLetterDesk struct {
	bridge   *collector.Bridge
	index    *dlq.Index
	timeline *collector.Timeline
	logger   *slog.Logger

	mu      sync.Mutex
	started []interface{ Stop() }
	done    chan struct{}
}

func streamsConfig(cfg *config) collector.StreamsConfig {
	return collector.StreamsConfig{Advisories: cfg.AdvisoryStream, DLQ: cfg.DLQStream, Replicas: cfg.StreamReplicas}
}

func newDeadLetterDesk(nc *nats.Conn, db *store.DB, cfg *config, reg prometheus.Registerer, logger *slog.Logger) (*deadLetterDesk, error) {
	streams := streamsConfig(cfg)
	bridge, err := collector.NewBridge(nc, collector.BridgeConfig{Streams: streams, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	index, err := dlq.NewIndex(nc, db, dlq.IndexConfig{Stream: cfg.DLQStream, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	timeline, err := collector.NewTimeline(nc, db, collector.TimelineConfig{Streams: streams, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &deadLetterDesk{bridge: bridge, index: index, timeline: timeline, logger: logger, done: make(chan struct{})}, nil
}

// start keeps trying until jetwatch's streams exist (NATS may be down, or a
// permission missing: the log says which), then starts every part.
func (d *deadLetterDesk) start(ctx context.Context) {
	defer close(d.done)
	wait := time.Second
	for {
		err := d.bridge.Start(ctx)
		if err == nil {
			break
		}
		d.logger.Error("dead-letter capture is not running yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	d.add(d.bridge)
	for _, part := range []interface {
		Start(context.Context) error
		Stop()
	}{d.index, d.timeline} {
		if err := part.Start(ctx); err != nil {
			d.logger.Error("dead-letter desk part failed to start", "err", err)
			continue
		}
		d.add(part)
	}
	d.logger.Info("dead-letter capture running")
}

func (d *deadLetterDesk) add(s interface{ Stop() }) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started = append(d.started, s)
}

func (d *deadLetterDesk) stop() {
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.started) - 1; i >= 0; i-- {
		d.started[i].Stop()
	}
}
