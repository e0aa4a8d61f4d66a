package collector

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/seriescap"
	"github.com/jetwatch/jetwatch/internal/streamreader"
	"github.com/jetwatch/jetwatch/store"
)

// eventsPosition names the timeline's position in stream_positions.
const eventsPosition = "advisories"

// TimelineConfig configures a Timeline.
type TimelineConfig struct {
	Streams StreamsConfig
	// Batch is how many advisories go into one transaction. Defaults to 500.
	Batch int
	// Registerer receives the timeline's counters. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// CountAPICalls subscribes to the API audit advisories to count the
	// JetStream API calls of others by outcome. Off by default: once
	// anyone subscribes, the server encodes every API call's request and
	// whole response into an advisory, jetwatch's own sampling included
	// (at 10,000 streams x 10 consumers, 10,000 advisories and about 75
	// MB a cycle, decoded here only to be dropped).
	CountAPICalls bool
	// TrimEvery is how often the timeline drops the events whose
	// advisories its stream no longer holds. Defaults to 5 minutes.
	TrimEvery time.Duration
}

// trimBatch is how many events one trim transaction deletes at most.
const trimBatch = 5000

// trimTimeout bounds the stream info request of a trim.
const trimTimeout = 10 * time.Second

// Timeline reads every captured advisory in order into the events table
// (each jetwatch replica reads all of them, so replicas converge), and
// counts the high-volume advisories that are not stored: naks, and with
// CountAPICalls API calls, jetwatch's own calls excluded.
type Timeline struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	db     *store.DB
	cfg    TimelineConfig
	logger *slog.Logger

	events   *prometheus.CounterVec
	naks     *prometheus.CounterVec
	apiCalls *prometheus.CounterVec
	subs     []*nats.Subscription
	// nakSeries are the stream/consumer pairs counted so far: the subjects
	// naks are counted by can be published by anyone, so their number is
	// capped at maxNakSeries.
	nakSeries *seriescap.Pairs

	// follower reads the advisory stream from the stored position.
	follower *streamreader.Follower[[]jetstream.Msg]
	// stopTrims ends the trim loop, which closes trimmed.
	stopTrims context.CancelFunc
	trimmed   chan struct{}
	stopOnce  sync.Once
}

// NewTimeline returns a timeline reading nc's advisories into db.
func NewTimeline(nc *nats.Conn, db *store.DB, cfg TimelineConfig) (*Timeline, error) {
	cfg.Streams = cfg.Streams.withDefaults()
	cfg.Batch = cmp.Or(cfg.Batch, 500)
	cfg.TrimEvery = cmp.Or(cfg.TrimEvery, 5*time.Minute)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	t := &Timeline{nc: nc, js: js, db: db, cfg: cfg, logger: cfg.Logger.With("component", "timeline"),
		nakSeries: seriescap.New(maxNakSeries),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_advisories_total",
			Help: "JetStream advisories read from the advisory stream, by kind and severity.",
		}, []string{"kind", "severity"}),
		naks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_advisory_naks_total",
			Help: "Naks seen by jetwatch (counted, not stored), by stream and consumer.",
		}, []string{"stream", "consumer"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_jetstream_api_calls_total",
			Help: "JetStream API calls seen in API audit advisories, jetwatch's own excluded, by outcome.",
		}, []string{"outcome"}),
	}
	counters := []prometheus.Collector{t.events, t.naks}
	if cfg.CountAPICalls {
		counters = append(counters, t.apiCalls)
	}
	if err := register(cfg.Registerer, "timeline", counters...); err != nil {
		return nil, err
	}
	t.follower, err = streamreader.NewFollower(js, streamreader.FollowerConfig[[]jetstream.Msg]{
		Stream: cfg.Streams.Advisories, Batch: cfg.Batch, Position: t.position, Handle: t.handle,
		What: "reading advisories", Logger: t.logger,
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Start subscribes to the counted advisories and reads the timeline in the
// background until ctx ends or Stop.
func (t *Timeline) Start(ctx context.Context) error {
	naks, err := t.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.>", func(m *nats.Msg) {
		// $JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.<stream>.<consumer>
		tokens := strings.Split(m.Subject, ".")
		if len(tokens) == 7 {
			t.naks.WithLabelValues(t.nakLabels(tokens[5], tokens[6])...).Inc()
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to nak advisories: %w", err)
	}
	t.subs = []*nats.Subscription{naks}
	if t.cfg.CountAPICalls {
		if err := t.countAPICalls(); err != nil {
			naks.Unsubscribe() //nolint:errcheck // best effort
			return err
		}
	}
	t.follower.Start(ctx)
	tctx, stop := context.WithCancel(ctx)
	t.stopTrims, t.trimmed = stop, make(chan struct{})
	go t.trimLoop(tctx)
	return nil
}

// trimLoop trims the timeline every TrimEvery until ctx ends. A failed trim
// is tried again at the next tick; nothing is lost by waiting.
func (t *Timeline) trimLoop(ctx context.Context) {
	defer close(t.trimmed)
	tick := time.NewTicker(t.cfg.TrimEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := t.Trim(ctx); err != nil && ctx.Err() == nil {
			t.logger.WarnContext(ctx, "trimming the advisory timeline failed; trying again later",
				"err", err, "retry_in", t.cfg.TrimEvery.String())
		}
	}
}

// Trim deletes the events whose advisories the advisory stream no longer
// holds (its limits aged or pushed them out, or it was purged), and says
// how many went. While the stream holds fewer advisories than the
// timeline has read (it was deleted and created again), nothing goes:
// the timeline starts again from the new stream.
func (t *Timeline) Trim(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, trimTimeout)
	defer cancel()
	st, err := t.js.Stream(rctx, t.cfg.Streams.Advisories)
	if err != nil {
		return 0, fmt.Errorf("advisory stream %s: %w", t.cfg.Streams.Advisories, err)
	}
	state := st.CachedInfo().State
	pos, err := t.db.Position(ctx, eventsPosition)
	if err != nil {
		return 0, fmt.Errorf("read timeline position: %w", err)
	}
	if state.FirstSeq <= 1 || pos > state.LastSeq {
		return 0, nil
	}
	var n int64
	for {
		d, err := t.db.TrimEvents(ctx, state.FirstSeq, trimBatch)
		n += d
		if err != nil || d < trimBatch {
			if n > 0 {
				t.logger.InfoContext(ctx, "advisory timeline trimmed to what its stream holds", "removed", n,
					"stream", t.cfg.Streams.Advisories, "first_seq", state.FirstSeq)
			}
			return n, err
		}
	}
}

// countAPICalls subscribes to the API audit advisories (see
// TimelineConfig.CountAPICalls).
func (t *Timeline) countAPICalls() error {
	audits, err := t.nc.Subscribe("$JS.EVENT.ADVISORY.API", func(m *nats.Msg) {
		var a struct {
			Client struct {
				Name string `json:"name"`
			} `json:"client"`
			Response string `json:"response"`
		}
		if json.Unmarshal(m.Data, &a) != nil || strings.HasPrefix(a.Client.Name, "jetwatch") {
			return
		}
		outcome := "ok"
		if strings.Contains(a.Response, `"error"`) {
			outcome = "error"
		}
		t.apiCalls.WithLabelValues(outcome).Inc()
	})
	if err != nil {
		return fmt.Errorf("subscribe to API audit advisories: %w", err)
	}
	t.subs = append(t.subs, audits)
	return nil
}

// Stop stops reading. Safe to call twice.
func (t *Timeline) Stop() {
	t.stopOnce.Do(func() {
		for _, s := range t.subs {
			s.Unsubscribe() //nolint:errcheck // closing anyway
		}
		t.follower.Stop()
		if t.stopTrims != nil {
			t.stopTrims()
			<-t.trimmed
		}
	})
}

// position is the last advisory stored.
func (t *Timeline) position(ctx context.Context) (uint64, error) {
	pos, err := t.db.Position(ctx, eventsPosition)
	if err != nil {
		return 0, fmt.Errorf("read timeline position: %w", err)
	}
	return pos, nil
}

func (t *Timeline) handle(ctx context.Context, batch []jetstream.Msg) (bool, error) {
	if len(batch) == 0 {
		return false, nil
	}
	return false, t.store(ctx, batch)
}

func (t *Timeline) store(ctx context.Context, msgs []jetstream.Msg) error {
	var last uint64
	events := make([]store.AdvisoryEvent, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("advisory metadata: %w", err)
		}
		last = max(last, meta.Sequence.Stream)
		e := describeAdvisory(strings.TrimPrefix(m.Subject(), RelayPrefix), m.Data(), meta.Timestamp)
		e.ID = meta.Sequence.Stream
		if t.ownConsumer(e) {
			continue // jetwatch's own ordered readers come and go; not the operator's news
		}
		// The advisory's id makes the relay's copy of one and the original
		// a single event, whichever the stream holds first.
		e.AdvisoryID = advisoryID(m.Data())
		events = append(events, store.AdvisoryEvent{Event: e, Data: eventData(m.Data())})
	}
	stored, err := t.db.InsertAdvisoryEvents(ctx, events, eventsPosition, last)
	if err != nil {
		return err
	}
	type kindSeverity struct{ kind, severity string }
	seen := map[kindSeverity]int{}
	for _, e := range stored {
		seen[kindSeverity{metricKind(e.Kind), e.Severity}]++
	}
	for k, n := range seen {
		t.events.WithLabelValues(k.kind, k.severity).Add(float64(n))
	}
	return nil
}

func (t *Timeline) ownConsumer(e store.Event) bool {
	own := e.Stream == t.cfg.Streams.Advisories || e.Stream == t.cfg.Streams.DLQ ||
		e.Stream == t.cfg.Streams.Actions || e.Stream == audit.DefaultStream
	return own && (e.Kind == "consumer_create" || e.Kind == "consumer_delete")
}

// advisory holds the fields of every advisory kind jetwatch describes.
type advisory struct {
	Type       string    `json:"type"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	Action     string    `json:"action"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Reason     string    `json:"reason"`
	Leader     string    `json:"leader"`
	Paused     bool      `json:"paused"`
	Server     string    `json:"server"`
	Domain     string    `json:"domain"`
}

const advisoryTypePrefix = "io.nats.jetstream.advisory.v1."

// describeAdvisory turns an advisory into a timeline entry in the
// operator's words. It never fails: malformed and unknown advisories are
// recorded as such.
func describeAdvisory(subject string, data []byte, received time.Time) store.Event {
	var a advisory
	if err := json.Unmarshal(data, &a); err != nil {
		return store.Event{Kind: "malformed", At: received.UTC(), Severity: store.SeverityWarning,
			Summary: fmt.Sprintf("malformed advisory on %s (%d bytes): %v", subject, len(data), err)}
	}
	// Anyone in the account may publish an advisory: names are shown
	// clipped unless they are names the server could have sent.
	subject = clip(subject)
	a.Stream, a.Consumer, a.Leader, a.Server, a.Domain = shownName(a.Stream), shownName(a.Consumer), shownName(a.Leader), shownName(a.Server), shownName(a.Domain)
	if natsname.Name(a.Action) != nil || len(a.Action) > 32 {
		a.Action = "unknown"
	}
	e := store.Event{Kind: strings.TrimPrefix(a.Type, advisoryTypePrefix), At: a.Time.UTC(), Stream: a.Stream, Consumer: a.Consumer, Severity: store.SeverityInfo}
	if natsname.Name(e.Kind) != nil || len(e.Kind) > 64 {
		// Kinds label a metric: a forged one must not make a new series each time.
		e.Kind = "unknown"
	}
	if e.At.IsZero() {
		e.At = received.UTC()
	}
	switch e.Kind {
	case "stream_action":
		e.Kind = "stream_" + a.Action
		e.Summary = fmt.Sprintf("stream %s %sd", a.Stream, a.Action)
		if a.Action == "delete" {
			e.Severity = store.SeverityWarning
		}
	case "consumer_action":
		e.Kind = "consumer_" + a.Action
		e.Summary = fmt.Sprintf("consumer %s on stream %s %sd", a.Consumer, a.Stream, a.Action)
		if a.Action == "delete" {
			e.Severity = store.SeverityWarning
		}
	case "max_deliver":
		e.Severity = store.SeverityWarning
		e.Summary = fmt.Sprintf("message #%d of %s reached max deliveries (%d) on consumer %s", a.StreamSeq, a.Stream, a.Deliveries, a.Consumer)
	case "terminated":
		e.Severity = store.SeverityWarning
		e.Summary = fmt.Sprintf("message #%d of %s terminated by consumer %s", a.StreamSeq, a.Stream, a.Consumer)
		if a.Reason != "" {
			// The client's text, sent with its term: any length.
			e.Summary += ": " + clipTo(a.Reason, maxReasonClip)
		}
		if strings.Contains(strings.ToLower(a.Reason), "deleted by stream limits") {
			e.Kind, e.Severity = "data_loss", store.SeverityCritical
			e.Summary = fmt.Sprintf("data loss: message #%d of %s was deleted by stream limits before consumer %s processed it", a.StreamSeq, a.Stream, a.Consumer)
		}
	case "stream_leader_elected":
		e.Summary = fmt.Sprintf("stream %s elected leader %s", a.Stream, a.Leader)
	case "consumer_leader_elected":
		e.Summary = fmt.Sprintf("consumer %s on %s elected leader %s", a.Consumer, a.Stream, a.Leader)
	case "stream_quorum_lost":
		e.Severity = store.SeverityCritical
		e.Summary = fmt.Sprintf("stream %s lost quorum: writes fail until enough replicas return", a.Stream)
	case "consumer_quorum_lost":
		e.Severity = store.SeverityCritical
		e.Summary = fmt.Sprintf("consumer %s on %s lost quorum: deliveries and acks stall", a.Consumer, a.Stream)
	case "server_out_of_space":
		e.Severity = store.SeverityCritical
		e.Summary = fmt.Sprintf("server %s is out of JetStream storage", a.Server)
	case "server_removed":
		e.Severity = store.SeverityWarning
		e.Summary = fmt.Sprintf("server %s was removed from the JetStream cluster", a.Server)
	case "consumer_pause":
		verb := "resumed"
		if a.Paused {
			verb = "paused"
		}
		e.Summary = fmt.Sprintf("consumer %s on %s %s", a.Consumer, a.Stream, verb)
	case "domain_leader_elected":
		e.Summary = fmt.Sprintf("JetStream domain %s elected leader %s", a.Domain, a.Leader)
	case "api_limit_reached":
		e.Severity = store.SeverityWarning
		e.Summary = "the JetStream API reached its limit of pending requests: calls are being dropped"
	case "", "unknown":
		e.Kind = "unknown"
		e.Summary = "advisory of no known type on " + subject
	default:
		e.Summary = strings.ReplaceAll(e.Kind, "_", " ") + " on " + subject
	}
	return e
}

// maxNakSeries caps the stream/consumer pairs naks are counted by.
const maxNakSeries = 10_000

// nakLabels are the labels a nak is counted by: its stream and consumer,
// or "(other)" for names the server could not have sent and for pairs
// past the cap.
func (t *Timeline) nakLabels(stream, consumer string) []string {
	s, c := t.nakSeries.Names(stream, consumer)
	return []string{s, c}
}

// knownKinds are the event kinds the server sends (as the timeline names
// them); anything else is counted as "other".
var knownKinds = map[string]bool{
	"stream_create": true, "stream_delete": true, "stream_modify": true, "consumer_create": true, "consumer_delete": true,
	"consumer_modify": true, "max_deliver": true, "terminated": true, "data_loss": true, "stream_leader_elected": true,
	"consumer_leader_elected": true, "stream_quorum_lost": true, "consumer_quorum_lost": true, "server_out_of_space": true,
	"server_removed": true, "consumer_pause": true, "domain_leader_elected": true, "api_limit_reached": true,
	"malformed": true, "unknown": true, "stream_snapshot_create": true, "stream_snapshot_complete": true,
	"stream_restore_create": true, "stream_restore_complete": true, "stream_batch_abandoned": true,
}

// metricKind is kind as jetwatch_advisories_total labels it: advisories
// can be forged, and each new label value would be a new series.
func metricKind(kind string) string {
	if knownKinds[kind] {
		return kind
	}
	return "other"
}

// ResetTimeline forgets the advisory timeline in db, so the next Timeline
// to start rebuilds it from the capture stream.
func ResetTimeline(ctx context.Context, db *store.DB) error {
	return db.ResetEvents(ctx, eventsPosition)
}
