package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// rulesFile holds the rules in force and reloads them on SIGHUP or when
// the file changes; a bad reload is logged and the old rules stay.
type rulesFile struct {
	path   string
	env    func(string) string
	logger *slog.Logger
	rules  atomic.Pointer[alert.Rules]
	mod    time.Time
}

// loadRules reads the rules file once: an error here stops jetwatch, so a
// broken file never starts silently without alerts.
func loadRules(path string, env func(string) string, logger *slog.Logger) (*rulesFile, error) {
	rs, err := alert.LoadFile(path, env)
	if err != nil {
		return nil, err
	}
	f := &rulesFile{path: path, env: env, logger: logger.With("component", "alerts", "file", path)}
	f.rules.Store(rs)
	if fi, err := os.Stat(path); err == nil {
		f.mod = fi.ModTime()
	}
	f.logger.Info("alert rules loaded", "rules", len(rs.Rules), "receivers", len(rs.Receivers))
	return f, nil
}

func (f *rulesFile) current() *alert.Rules { return f.rules.Load() }

// watch reloads on SIGHUP and when the file's modification time changes,
// until ctx ends.
func (f *rulesFile) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			f.reload("SIGHUP")
		case <-t.C:
			fi, err := os.Stat(f.path)
			if err == nil && !fi.ModTime().Equal(f.mod) {
				f.mod = fi.ModTime()
				f.reload("file changed")
			}
		}
	}
}

func (f *rulesFile) reload(why string) {
	rs, err := alert.LoadFile(f.path, f.env)
	if err != nil {
		f.logger.Error("alert rules not reloaded; the previous rules stay in force", "why", why, "err", err)
		return
	}
	f.rules.Store(rs)
	f.logger.Info("alert rules reloaded", "why", why, "rules", len(rs.Rules), "receivers", len(rs.Receivers))
}

// alerting is the evaluator and sender, started once NATS takes the
// outbox stream.
type alerting struct {
	rules     *rulesFile
	evaluator *alert.Evaluator
	sender    *alert.Sender
	index     *alert.DeliveryIndex
	logger    *slog.Logger
	done      chan struct{}
	started   []interface{ Stop() }
}

func newAlerting(nc *nats.Conn, db *store.DB, rules *rulesFile, cfg *config, reg prometheus.Registerer, logger *slog.Logger) (*alerting, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	outbox := alert.OutboxConfig{Replicas: cfg.StreamReplicas}
	ev, err := alert.NewEvaluator(js, alert.EvaluatorConfig{Rules: rules.current, Index: db, DeadLetters: dlq.NewQueries(db, js, cfg.DLQStream),
		Interval: cfg.AlertInterval, Outbox: outbox, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	sender, err := alert.NewSender(js, alert.SenderConfig{Rules: rules.current, Log: alert.NewDeliveryLog(db), Outbox: outbox,
		ExternalURL: cfg.ExternalURL, Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	index := alert.NewDeliveryIndex(js, alert.NewDeliveryLog(db), outbox, logger)
	return &alerting{rules: rules, evaluator: ev, sender: sender, index: index, logger: logger.With("component", "alerts"), done: make(chan struct{})}, nil
}

// start keeps trying until the outbox exists (NATS may be down, or a
// permission missing: the log says which), then evaluates and sends.
func (a *alerting) start(ctx context.Context) {
	defer close(a.done)
	go a.rules.watch(ctx)
	wait := time.Second
	for _, part := range []interface {
		Start(context.Context) error
		Stop()
	}{a.index, a.sender, a.evaluator} {
		for {
			err := part.Start(ctx)
			if err == nil {
				a.started = append(a.started, part)
				break
			}
			a.logger.Error("alerting is not running yet; retrying", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
		}
	}
	a.logger.Info("alerting running")
}

func (a *alerting) stop() {
	<-a.done
	for i := len(a.started) - 1; i >= 0; i-- {
		a.started[i].Stop()
	}
}
