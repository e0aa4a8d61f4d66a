package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// deadLetterDesk is the bridge, the dead-letter index and the advisory
// timeline, started together once jetwatch's streams exist.
type deadLetterDesk struct {
	relay       *collector.Relay
	bridge      *collector.Bridge
	index       *dlq.Index
	timeline    *collector.Timeline
	nc          *nats.Conn
	queries     *dlq.Queries
	redeliverer *dlq.Redeliverer
	breakers    *collector.BreakerWatcher
	logger      *slog.Logger
	tracing     trace.TracerProvider

	bulk atomic.Pointer[dlq.BulkRunner]

	db       *store.DB
	replicas int
	audit    *lazyAudit
	tokens   *lazyTokens // nil without sign-in

	mu      sync.Mutex
	started []interface{ Stop() }
	done    chan struct{}
}

func streamsConfig(cfg *config) collector.StreamsConfig {
	return collector.StreamsConfig{Advisories: cfg.AdvisoryStream, DLQ: cfg.DLQStream, Replicas: cfg.StreamReplicas}
}

func newDeadLetterDesk(nc *nats.Conn, db *store.DB, redeliverer *dlq.Redeliverer, cfg *config, reg prometheus.Registerer, logger *slog.Logger) (*deadLetterDesk, error) {
	streams := streamsConfig(cfg)
	capture, err := cfg.captureStreams()
	if err != nil {
		return nil, err
	}
	bridge, err := collector.NewBridge(nc, collector.BridgeConfig{Streams: streams, CaptureStreams: capture, Events: db,
		Registerer: reg, Logger: logger, TracerProvider: cfg.Tracing})
	if err != nil {
		return nil, err
	}
	relay, err := collector.NewRelay(nc, collector.RelayConfig{Streams: streams, Registerer: reg, Logger: logger})
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
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	breakers, err := collector.NewBreakerWatcher(js, db, collector.BreakerWatcherConfig{Replicas: cfg.StreamReplicas, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &deadLetterDesk{relay: relay, bridge: bridge, index: index, timeline: timeline, nc: nc, queries: dlq.NewQueries(db, js, cfg.DLQStream),
		redeliverer: redeliverer, breakers: breakers, logger: logger, done: make(chan struct{}),
		db: db, replicas: cfg.StreamReplicas, audit: &lazyAudit{db: db}, tracing: cfg.Tracing}, nil
}

// start keeps trying until jetwatch's streams exist (NATS may be down, or a
// permission missing: the log says which), then starts every part.
func (d *deadLetterDesk) start(ctx context.Context) {
	defer close(d.done)
	// The relay first: it needs no stream to receive advisories, and
	// keeps them until the capture stream can take them.
	if err := d.relay.Start(ctx); err != nil {
		d.logger.Error("dead-letter advisories are not relayed: a capture stream without a leader may lose some", "err", err)
	} else {
		d.add(d.relay)
	}
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
	if err := d.startBulk(ctx); err != nil {
		d.logger.Error("bulk jobs are not available", "err", err)
	}
	if err := d.startAccess(ctx); err != nil {
		d.logger.Error("the audit log or API tokens are not available", "err", err)
	}
	if err := d.breakers.Start(ctx); err != nil {
		d.logger.Error("breakers are not watched", "err", err)
	} else {
		d.add(d.breakers)
	}
	d.logger.Info("dead-letter capture running")
}

func (d *deadLetterDesk) startBulk(ctx context.Context) error {
	js, err := jetstream.New(d.nc)
	if err != nil {
		return err
	}
	runner := dlq.NewBulkRunner(js, d.queries, d.redeliverer, dlq.BulkConfig{Replicas: d.replicas, Logger: d.logger, TracerProvider: d.tracing})
	if err := runner.Start(ctx); err != nil {
		return err
	}
	d.add(stopper(runner.Stop))
	d.bulk.Store(runner)
	return nil
}

// startAccess opens the audit stream and, with sign-in configured, the
// API token bucket.
func (d *deadLetterDesk) startAccess(ctx context.Context) error {
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{Replicas: d.replicas, Logger: d.logger})
	if err != nil {
		return err
	}
	log.Start(ctx)
	d.add(stopper(log.Stop))
	d.audit.p.Store(log)
	if d.tokens == nil {
		return nil
	}
	js, err := jetstream.New(d.nc)
	if err != nil {
		return err
	}
	tokens := auth.NewTokens(js, "", d.replicas)
	if err := tokens.Start(ctx); err != nil {
		return err
	}
	d.add(tokens)
	d.tokens.p.Store(tokens)
	return nil
}

type stopper func()

func (s stopper) Stop() { s() }

func (d *deadLetterDesk) runner() (*dlq.BulkRunner, error) {
	if r := d.bulk.Load(); r != nil {
		return r, nil
	}
	return nil, dlq.ErrBulkUnavailable
}

// The desk serves web.BulkJobs through the runner once it runs.

func (d *deadLetterDesk) Plan(ctx context.Context, req dlq.BulkRequest) (dlq.BulkPlan, error) {
	r, err := d.runner()
	if err != nil {
		return dlq.BulkPlan{}, err
	}
	return r.Plan(ctx, req)
}

func (d *deadLetterDesk) Create(ctx context.Context, req dlq.BulkRequest) (dlq.BulkJob, error) {
	r, err := d.runner()
	if err != nil {
		return dlq.BulkJob{}, err
	}
	return r.Create(ctx, req)
}

func (d *deadLetterDesk) Get(ctx context.Context, id string) (dlq.BulkJob, error) {
	r, err := d.runner()
	if err != nil {
		return dlq.BulkJob{}, err
	}
	return r.Get(ctx, id)
}

func (d *deadLetterDesk) List(ctx context.Context) ([]dlq.BulkJob, error) {
	r, err := d.runner()
	if err != nil {
		return nil, err
	}
	return r.List(ctx)
}

func (d *deadLetterDesk) Pause(ctx context.Context, id string) (dlq.BulkJob, error) {
	r, err := d.runner()
	if err != nil {
		return dlq.BulkJob{}, err
	}
	return r.Pause(ctx, id)
}

func (d *deadLetterDesk) Resume(ctx context.Context, id string) (dlq.BulkJob, error) {
	r, err := d.runner()
	if err != nil {
		return dlq.BulkJob{}, err
	}
	return r.Resume(ctx, id)
}

func (d *deadLetterDesk) Cancel(ctx context.Context, id string) (dlq.BulkJob, error) {
	r, err := d.runner()
	if err != nil {
		return dlq.BulkJob{}, err
	}
	return r.Cancel(ctx, id)
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
