package main

import (
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/startstop"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/pause"
	"github.com/jetwatch/jetwatch/store"
)

// parts are jetwatch's long-running components. Each is built without
// asking NATS anything and answers "unavailable" itself until its start
// group has started it, so the dashboard serves from the first second
// whatever NATS does.
type parts struct {
	relay       *collector.Relay
	bridge      *collector.Bridge
	index       *index.Index
	timeline    *collector.Timeline
	queries     *query.Queries
	redeliverer *redeliver.Redeliverer
	bulk        *bulk.Runner
	audit       *audit.Log
	tokens      *auth.Tokens // nil without sign-in
	breakers    *collector.BreakerWatcher
	pauses      *pause.Consumers

	// Journeys: the index is nil without --journey-streams; the reader
	// still finds dead letters by their trace id.
	journeys      *journey.Index
	journeyReader *journey.Reader
	correlations  journey.Correlations

	// Without a rules file, all nil.
	rules      *rulesFile
	deliveries *alert.DeliveryIndex
	sender     *alert.Sender
	evaluator  *alert.Evaluator
}

func streamsConfig(cfg *config) collector.StreamsConfig {
	return collector.StreamsConfig{Advisories: cfg.AdvisoryStream, DLQ: cfg.DLQStream, Replicas: cfg.StreamReplicas}
}

// accounts are the --account dead letters that dead-letter alert rules
// with an account pattern read.
func buildParts(nc *nats.Conn, db *store.DB, cfg *config, signIn bool, sampled func() store.SamplerState, accounts []alert.DeadLetterAccount,
	reg prometheus.Registerer, logger *slog.Logger) (*parts, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	streams := streamsConfig(cfg)
	capture, err := cfg.captureStreams()
	if err != nil {
		return nil, err
	}
	p := &parts{queries: query.New(db, js, cfg.DLQStream), journeyReader: journey.NewReader(db)}
	if p.correlations, err = cfg.correlations(); err != nil {
		return nil, err
	}
	journeyStreams, err := cfg.journeyStreams()
	if err != nil {
		return nil, err
	}
	if journeyStreams != nil {
		if p.journeys, err = journey.NewIndex(js, db, journey.IndexConfig{Streams: journeyStreams, Correlations: p.correlations,
			Skip: []string{cfg.DLQStream, cfg.AdvisoryStream}, Retention: cfg.JourneyRetention, MaxRows: int64(cfg.JourneyMaxRows),
			Registerer: reg, Logger: logger}); err != nil {
			return nil, err
		}
	}
	if p.bridge, err = collector.NewBridge(nc, collector.BridgeConfig{Streams: streams, CaptureStreams: capture, Events: db,
		Registerer: reg, Logger: logger, TracerProvider: cfg.Tracing}); err != nil {
		return nil, err
	}
	if p.relay, err = collector.NewRelay(nc, collector.RelayConfig{Streams: streams, Registerer: reg, Logger: logger}); err != nil {
		return nil, err
	}
	searchText, searchMasks, err := searchMasking(cfg)
	if err != nil {
		return nil, err
	}
	if p.index, err = index.New(nc, db, index.Config{Stream: cfg.DLQStream, Keys: p.correlations.KeyValues,
		SearchText: searchText, SearchMasks: searchMasks, Registerer: reg, Logger: logger}); err != nil {
		return nil, err
	}
	if p.timeline, err = collector.NewTimeline(nc, db, collector.TimelineConfig{Streams: streams, Registerer: reg, Logger: logger,
		CountAPICalls: cfg.CountAPICalls}); err != nil {
		return nil, err
	}
	if p.breakers, err = collector.NewBreakerWatcher(js, db, collector.BreakerWatcherConfig{Replicas: cfg.StreamReplicas,
		Registerer: reg, Logger: logger}); err != nil {
		return nil, err
	}
	if p.redeliverer, err = redeliver.New(nc, db, redeliver.Config{Stream: cfg.DLQStream, Registerer: reg,
		TracerProvider: cfg.Tracing, Policy: redeliver.TargetPolicy{OwnStreams: []string{cfg.AdvisoryStream},
			Subjects: splitList(cfg.RedeliverSubjects)}}); err != nil {
		return nil, err
	}
	p.bulk = bulk.NewRunner(js, p.queries, p.redeliverer, bulk.Config{Replicas: cfg.StreamReplicas, Logger: logger,
		TracerProvider: cfg.Tracing, Breakers: db})
	p.pauses = pause.New(js, pause.Config{OwnStreams: []string{cfg.DLQStream, cfg.AdvisoryStream}})
	if p.audit, err = audit.New(nc, db, audit.Config{Replicas: cfg.StreamReplicas, Logger: logger}); err != nil {
		return nil, err
	}
	if signIn {
		p.tokens = auth.NewTokens(js, "", cfg.StreamReplicas)
	}
	if cfg.Rules != "" {
		if p.rules, err = loadRules(cfg.Rules, cfg.Env, logger); err != nil {
			return nil, err
		}
		outbox := alert.OutboxConfig{Replicas: cfg.StreamReplicas}
		sampledAccounts := func() (string, []store.Account) {
			st := sampled()
			return st.Account, st.Accounts
		}
		if p.evaluator, err = alert.NewEvaluator(js, alert.EvaluatorConfig{Rules: p.rules.current, Index: db, DeadLetters: p.queries,
			Accounts: sampledAccounts, DeadLetterAccounts: accounts, Interval: cfg.AlertInterval, Outbox: outbox, Registerer: reg, Logger: logger}); err != nil {
			return nil, err
		}
		if p.sender, err = alert.NewSender(js, alert.SenderConfig{Rules: p.rules.current, Log: alert.NewDeliveryLog(db), Outbox: outbox,
			ExternalURL: cfg.ExternalURL, Registerer: reg, Logger: logger}); err != nil {
			return nil, err
		}
		p.deliveries = alert.NewDeliveryIndex(js, alert.NewDeliveryLog(db), outbox, logger)
	}
	return p, nil
}

// startGroup is a start group and what the log calls it once all of it
// runs.
type startGroup struct {
	name string
	*startstop.Group
}

// groups are the start groups of the parts: dead letters and what shares
// their streams, then alerting, each retried on its own so that a missing
// permission for one never holds the other back.
func (p *parts) groups(logger *slog.Logger) []startGroup {
	// The relay needs no stream: it keeps advisories until the capture
	// stream, which the bridge creates, can take them.
	capture := startstop.New(logger)
	capture.Add("dead-letter advisory relay", p.relay)
	capture.Add("dead-letter capture", p.bridge)
	capture.Then()
	capture.Add("dead-letter index", p.index)
	capture.Add("advisory timeline", p.timeline)
	capture.Add("bulk jobs", p.bulk)
	capture.Add("audit log", p.audit)
	if p.tokens != nil {
		capture.Add("API tokens", p.tokens)
	}
	capture.Add("breaker watcher", p.breakers)
	if p.journeys != nil {
		capture.Add("journey index", p.journeys)
	}
	groups := []startGroup{{"dead-letter capture", capture}}
	if p.rules != nil {
		alerting := startstop.New(logger.With("component", "alerts"))
		alerting.Add("alert delivery log", p.deliveries)
		alerting.Add("alert sender", p.sender)
		alerting.Then()
		alerting.Add("alert evaluator", p.evaluator)
		groups = append(groups, startGroup{"alerting", alerting})
	}
	return groups
}
