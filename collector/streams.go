package collector

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/ensure"
)

// Names jetwatch uses in JetStream unless configured otherwise.
const (
	DefaultAdvisoryStream = "JETWATCH_ADVISORIES"
	DefaultDLQStream      = "DLQ"
	DefaultBridgeDurable  = "jetwatch-bridge"
	DefaultActionsStream  = "JETWATCH_DLQ_ACTIONS"
)

// advisorySubjects are the advisories jetwatch keeps. The API audit
// ($JS.EVENT.ADVISORY.API, one per API call) and naks (one per nak) are not
// stored: they are counted from core subscriptions instead.
var advisorySubjects = []string{
	"$JS.EVENT.ADVISORY.STREAM.>",
	"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
	"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
	"$JS.EVENT.ADVISORY.CONSUMER.CREATED.>",
	"$JS.EVENT.ADVISORY.CONSUMER.DELETED.>",
	"$JS.EVENT.ADVISORY.CONSUMER.PAUSE.>",
	"$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.>",
	"$JS.EVENT.ADVISORY.CONSUMER.QUORUM_LOST.>",
	"$JS.EVENT.ADVISORY.SERVER.>",
	"$JS.EVENT.ADVISORY.DOMAIN.>",
	"$JS.EVENT.ADVISORY.API.LIMIT_REACHED",
	// The relay's copies of dead-letter advisories, for when this stream
	// had no leader as the server sent them.
	RelayPrefix + ">",
}

// StreamsConfig names and sizes the streams jetwatch keeps its records in.
type StreamsConfig struct {
	// Advisories captures JetStream advisories. Defaults to JETWATCH_ADVISORIES.
	Advisories string
	// DLQ holds dead letters on dlq.>. Defaults to DLQ.
	DLQ string
	// Actions records what operators did to dead letters, on
	// jetwatch.dlq.actions.>. Defaults to JETWATCH_DLQ_ACTIONS.
	Actions string
	// Replicas of both streams. Defaults to 1.
	Replicas int
	// AdvisoryMaxAge bounds the advisory stream. Defaults to 7 days.
	AdvisoryMaxAge time.Duration
	// DLQMaxAge bounds the DLQ stream; 0 keeps dead letters until deleted.
	DLQMaxAge time.Duration
	// DuplicateWindow of the DLQ stream: a dead letter published twice
	// within it (a bridge retry, a service and the bridge both) is stored
	// once. Defaults to 30 minutes.
	DuplicateWindow time.Duration
}

func (c StreamsConfig) withDefaults() StreamsConfig {
	if c.Advisories == "" {
		c.Advisories = DefaultAdvisoryStream
	}
	if c.DLQ == "" {
		c.DLQ = DefaultDLQStream
	}
	if c.Actions == "" {
		c.Actions = DefaultActionsStream
	}
	c.Replicas = max(c.Replicas, 1)
	if c.AdvisoryMaxAge == 0 {
		c.AdvisoryMaxAge = 7 * 24 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 30 * time.Minute
	}
	return c
}

// EnsureStreams creates jetwatch's streams when they are missing. Existing
// streams are left as their owner configured them, but for replicas raised
// to Replicas. A missing permission is reported with the subject to allow.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.withDefaults()
	want := []jetstream.StreamConfig{
		{Name: cfg.Advisories, Description: "JetStream advisories captured by jetwatch", Subjects: advisorySubjects,
			Retention: jetstream.LimitsPolicy, MaxAge: cfg.AdvisoryMaxAge, Replicas: cfg.Replicas, Storage: jetstream.FileStorage},
		// Direct gets: a dead letter shown reads its message from any
		// replica, without a round trip through the stream's leader.
		{Name: cfg.DLQ, Description: "Dead letters: failed messages with their Dlq- envelope", Subjects: []string{"dlq.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: cfg.DLQMaxAge, Replicas: cfg.Replicas, Storage: jetstream.FileStorage,
			Duplicates: cfg.DuplicateWindow, AllowDirect: true},
		{Name: cfg.Actions, Description: "What operators did to dead letters, in order (jetwatch)", Subjects: []string{dlq.ActionSubjectPrefix + ">"},
			Retention: jetstream.LimitsPolicy, Replicas: cfg.Replicas, Storage: jetstream.FileStorage, Duplicates: cfg.DuplicateWindow},
	}
	for _, sc := range want {
		if err := ensure.Stream(ctx, js, sc); err != nil {
			return err
		}
	}
	return nil
}
