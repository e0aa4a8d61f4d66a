package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// BridgeConfig configures a Bridge.
type BridgeConfig struct {
	Streams StreamsConfig
	// Durable is the bridge's durable consumer on the advisory stream, shared
	// by every jetwatch replica so each advisory is bridged once. Defaults
	// to jetwatch-bridge.
	Durable string
	// Batch is how many advisories are fetched at once. Defaults to 256.
	Batch int
	// Concurrency is how many advisories are bridged at once; dead letters
	// need no order among themselves. Defaults to 16.
	Concurrency int
	// RequestTimeout bounds each JetStream request. Defaults to 5 seconds.
	RequestTimeout time.Duration
	// APIPrefix is the JetStream API subject prefix. Defaults to "$JS.API".
	APIPrefix string
	// Registerer receives the bridge's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider traces each bridged advisory as a span. Defaults to
	// no tracing.
	TracerProvider trace.TracerProvider
	// CaptureStreams limits the streams failed messages are copied from.
	// Defaults to every user stream; jetwatch's own and KV and object
	// store streams are never copied.
	CaptureStreams StreamPatterns
	// Events receives an event for each rejected advisory, for the events
	// page. Nil records none; the metric and the log still say.
	Events EventRecorder
}

// EventRecorder keeps the bridge's verdicts on advisories where the events
// page reads them. *store.DB is one.
type EventRecorder interface {
	RecordEvent(ctx context.Context, e store.Event, data string) error
}

// Bridge turns max_deliver and terminated advisories into dead letters:
// it fetches the original message by stream sequence while it still exists
// and publishes it to dlq.<stream>.<consumer> with the Dlq- envelope. When
// the original is gone it still records a dead letter, marked payload
// unavailable, so no failure goes unseen.
//
// Any client in the account may publish an advisory, so each one is a
// claim the bridge checks against the server before it copies anything
// (see verify); one that fails is rejected: counted, logged, shown on the
// events page, and acknowledged.
type Bridge struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    BridgeConfig
	logger *slog.Logger
	tracer trace.Tracer

	bridged      *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	infos        *consumerInfos
	fetchFailed  prometheus.Counter
	publishError prometheus.Counter
	// seen holds the ids of advisories bridged lately: the relay's copy of
	// one (or the original of a copy) is skipped.
	seen *recentIDs

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewBridge returns a bridge on nc.
func NewBridge(nc *nats.Conn, cfg BridgeConfig) (*Bridge, error) {
	cfg.Streams = cfg.Streams.withDefaults()
	cfg.Durable = cmp.Or(cfg.Durable, DefaultBridgeDurable)
	cfg.Batch = cmp.Or(cfg.Batch, 256)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 16)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, 5*time.Second)
	cfg.APIPrefix = cmp.Or(cfg.APIPrefix, "$JS.API")
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	js, err := jetstream.NewWithAPIPrefix(nc, cfg.APIPrefix)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Bridge{
		nc: nc, js: js, cfg: cfg, seen: newRecentIDs(1 << 14), logger: cfg.Logger.With("component", "bridge"),
		tracer: tracecontext.Tracer(cfg.TracerProvider, tracerName),
		infos:  newConsumerInfos(time.Second),
		bridged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_dead_letters_captured_total",
			Help: "Dead letters the bridge published to the DLQ stream, by origin stream, consumer, reason and whether the payload was still there.",
		}, []string{"stream", "consumer", "reason", "payload"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_bridge_advisories_rejected_total",
			Help: "Advisories the bridge refused to copy, by reason: malformed, invalid_name, protected_stream, not_captured (outside --capture-streams), not_delivered, deliveries_mismatch.",
		}, []string{"reason"}),
		fetchFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jetwatch_bridge_fetch_failures_total",
			Help: "Originals the bridge could not fetch (gone, or the request failed).",
		}),
		publishError: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jetwatch_bridge_publish_errors_total",
			Help: "Dead-letter publishes that failed and will be retried.",
		}),
	}
	for _, r := range rejectReasons {
		b.rejected.WithLabelValues(r) // every reason shows, at 0 until it happens
	}
	if err := register(cfg.Registerer, "bridge", b.bridged, b.rejected, b.fetchFailed, b.publishError); err != nil {
		return nil, err
	}
	return b, nil
}

// Start ensures the streams and the bridge's durable consumer exist, then
// bridges in the background. Advisories that arrived while jetwatch was
// down wait in the stream and are bridged now.
func (b *Bridge) Start(ctx context.Context) error {
	if err := EnsureStreams(ctx, b.js, b.cfg.Streams); err != nil {
		return err
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.Streams.Advisories, jetstream.ConsumerConfig{
		Durable:     b.cfg.Durable,
		Description: "jetwatch: turns max_deliver and terminated advisories into dead letters",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     30 * time.Second,
		MaxDeliver:  -1,
		BackOff:     nil,
		// The advisories as the server sent them, and the copies the relay
		// stored for when the capture stream had no leader.
		FilterSubjects: append(slices.Clone(relayedSubjects), relayedCopies()...),
	})
	if err != nil {
		return fmt.Errorf("bridge consumer on %s: %w", b.cfg.Streams.Advisories, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stop, b.done = cancel, make(chan struct{})
	go b.run(ctx, cons)
	return nil
}

// Stop stops bridging after the advisory in hand. Safe to call twice.
func (b *Bridge) Stop() {
	b.stopOnce.Do(func() {
		if b.stop != nil {
			b.stop()
			<-b.done
		}
	})
}

func (b *Bridge) run(ctx context.Context, cons jetstream.Consumer) {
	defer close(b.done)
	for ctx.Err() == nil {
		batch, err := cons.Fetch(b.cfg.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				b.logger.Warn("fetching advisories failed; retrying", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		var msgs []jetstream.Msg
		var advisories []capturedAdvisory
		inBatch := map[string]bool{}
		for m := range batch.Messages() {
			id := advisoryID(m.Data())
			if b.seen.has(id) || inBatch[id] {
				// The relay's copy of one bridged already (or in hand), or
				// the reverse: bridged once, and counted once.
				m.Ack() //nolint:errcheck // a lost ack redelivers, and it is skipped again
				continue
			}
			inBatch[id] = true
			msgs = append(msgs, m)
			c := capturedAdvisory{data: m.Data(), received: time.Now()}
			if meta, err := m.Metadata(); err == nil {
				c.seq, c.received = meta.Sequence.Stream, meta.Timestamp
			}
			advisories = append(advisories, c)
		}
		b.handleAll(ctx, advisories, func(i int, err error) {
			if err != nil {
				b.logger.Warn("bridging a dead letter failed; it will be retried", "err", err)
				msgs[i].NakWithDelay(5 * time.Second) //nolint:errcheck // redelivered after AckWait anyway
				return
			}
			b.seen.add(advisoryID(advisories[i].data))
			msgs[i].Ack() //nolint:errcheck // a lost ack redelivers; the Nats-Msg-Id dedups the copy
		})
	}
}

// capturedAdvisory is one advisory as the capture stream holds it.
type capturedAdvisory struct {
	data     []byte
	seq      uint64    // in the capture stream: the id of its event; 0 when unknown
	received time.Time // when the capture stream stored it
}

// handleAll bridges advisories, Concurrency at a time, and reports each
// outcome to done.
func (b *Bridge) handleAll(ctx context.Context, advisories []capturedAdvisory, done func(i int, err error)) {
	sem := make(chan struct{}, b.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, m := range advisories {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			done(i, b.handle(ctx, m))
		})
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handle bridges one advisory. A rejected advisory is nil (acked):
// retrying cannot help. An error means a retry may.
func (b *Bridge) handle(ctx context.Context, m capturedAdvisory) (err error) {
	ctx, span := b.tracer.Start(ctx, "bridge advisory", trace.WithSpanKind(trace.SpanKindConsumer))
	outcome := outcomeSkipped
	defer func() { endBridgeSpan(span, outcome, err) }()
	a, rej := decodeDeliveryAdvisory(m.data, m.received)
	span.SetAttributes(bridgeAttributes(a)...)
	var orig original
	if rej == nil {
		rej = b.policy(a)
	}
	if rej == nil {
		if orig, rej, err = b.verify(ctx, a); err != nil {
			return err
		}
	}
	if rej != nil {
		outcome = outcomeRejected
		b.recordRejection(ctx, m, a, rej)
		return nil
	}

	env := dlq.Envelope{
		Stream: a.Stream, Sequence: a.StreamSeq, Consumer: a.Consumer, Deliveries: a.Deliveries,
		Reason: dlq.ReasonMaxDeliver, FailedAt: a.Time, PayloadUnavailable: orig.unavailable,
	}
	if a.Type == typeTerminated {
		env.Reason = dlq.ReasonTerminated
		env.Error = a.Reason
	} else {
		env.Error = fmt.Sprintf("not acknowledged after %d deliveries", a.Deliveries)
	}
	out := nats.NewMsg(dlq.Subject(a.Stream, a.Consumer))
	var originalMsgID []string
	if orig.msg != nil {
		if link, ok := tracecontext.LinkTo(orig.msg.Header); ok {
			// The dead letter keeps the original's traceparent; the span
			// that bridged it points there.
			span.AddLink(link)
		}
		for k, v := range orig.msg.Header {
			if strings.HasPrefix(k, "Nats-") {
				// Server headers (Nats-Expected-*, Nats-Rollup, ...) would
				// change how the DLQ stream treats the copy.
				if k == "Nats-Msg-Id" {
					originalMsgID = v
				}
				continue
			}
			out.Header[k] = v
		}
		out.Data = orig.msg.Data
		env.Subject = orig.msg.Subject
	}
	env.Apply(out.Header)
	if originalMsgID != nil {
		out.Header[dlq.HeaderOriginalMsgID] = originalMsgID
	}
	out.Header.Set(jetstream.MsgIDHeader, a.Stream+":"+strconv.FormatUint(a.StreamSeq, 10)+":"+a.Consumer)
	pctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	if _, err := b.js.PublishMsg(pctx, out, jetstream.WithExpectStream(b.cfg.Streams.DLQ)); err != nil {
		b.publishError.Inc()
		return fmt.Errorf("publish dead letter of %s #%d to %s: %w", a.Stream, a.StreamSeq, out.Subject, err)
	}
	payload, outcome := "available", outcomeBridged
	stream, consumer := a.Stream, a.Consumer
	switch {
	case orig.unverified:
		// Names nobody vouched for stay out of the labels: forged
		// advisories must not mint series.
		payload, outcome, consumer = "unverified", outcomeUnverified, unverifiedLabel
		if !orig.streamExists {
			stream = unverifiedLabel
		}
		b.logger.InfoContext(ctx, "failure of a consumer that is gone recorded without its payload",
			"stream", clip(a.Stream), "consumer", clip(a.Consumer), "stream_seq", a.StreamSeq, "why", orig.unavailable)
	case env.PayloadUnavailable != "":
		payload, outcome = "unavailable", outcomePayloadUnavailable
	}
	b.bridged.WithLabelValues(stream, consumer, env.Reason, payload).Inc()
	return nil
}

// unverifiedLabel stands for a stream or consumer name the server did not
// vouch for, in the bridge's metrics.
const unverifiedLabel = "(unverified)"

// policy refuses advisories about streams the bridge never copies from.
func (b *Bridge) policy(a deliveryAdvisory) *rejection {
	switch {
	case b.cfg.Streams.protected(a.Stream):
		return reject(rejectProtectedStream, "%s advisory names stream %s: jetwatch never copies from its own streams nor from KV or object store streams",
			a.kind(), clip(a.Stream))
	case !b.cfg.CaptureStreams.Match(a.Stream):
		return reject(rejectNotCaptured, "stream %s is not in --capture-streams %s", clip(a.Stream), clip(b.cfg.CaptureStreams.String()))
	}
	return nil
}

// recordRejection counts, logs and records a rejected advisory. Each is
// logged once: it is acked, never retried.
func (b *Bridge) recordRejection(ctx context.Context, m capturedAdvisory, a deliveryAdvisory, rej *rejection) {
	b.rejected.WithLabelValues(rej.reason).Inc()
	if rej.reason == rejectNotCaptured {
		// The operator's choice, not an attack: the timeline still shows
		// the failure.
		b.logger.DebugContext(ctx, "failure outside --capture-streams not copied", "detail", rej.detail, "advisory_seq", m.seq)
		return
	}
	b.logger.WarnContext(ctx, "advisory rejected; nothing copied", "reason", rej.reason, "detail", rej.detail, "advisory_seq", m.seq)
	if b.cfg.Events == nil || m.seq == 0 {
		return
	}
	e := store.Event{ID: m.seq, Kind: EventAdvisoryRejected, At: m.received.UTC(),
		Stream: shownName(a.Stream), Consumer: shownName(a.Consumer), Severity: store.SeverityWarning,
		Summary:    "advisory rejected (" + rej.reason + "): " + rej.detail + "; nothing was copied to the DLQ",
		AdvisoryID: advisoryID(m.data)}
	if err := b.cfg.Events.RecordEvent(ctx, e, eventData(m.data)); err != nil {
		b.logger.WarnContext(ctx, "the rejected advisory could not be put on the events page", "err", err, "advisory_seq", m.seq)
	}
}

// EventAdvisoryRejected is the kind of the event the bridge records for an
// advisory it rejected.
const EventAdvisoryRejected = store.EventAdvisoryRejected

// shownName is a name as the events table keeps it: whole when valid, so
// filtering by it works; clipped when not.
func shownName(s string) string {
	if natsname.Name(s) == nil {
		return s
	}
	return clip(s)
}

// unavailableWhy explains a missing original in the operator's words.
func unavailableWhy(a deliveryAdvisory, streamGone bool) string {
	switch {
	case streamGone:
		return "stream " + a.Stream + " no longer exists"
	case strings.Contains(strings.ToLower(a.Reason), "deleted by stream limits"):
		return "data loss: the server deleted the message by stream limits before it was processed"
	case a.Type == typeTerminated:
		return "the message left stream " + a.Stream + " when it was terminated (a Term on a WorkQueue or Interest stream acknowledges it); only a service that copies it to the DLQ before Term keeps the payload"
	}
	return "the message is no longer in stream " + a.Stream + " (removed by limits or deleted before jetwatch fetched it)"
}

// msgGetResponse is the JetStream API's answer to STREAM.MSG.GET.
type msgGetResponse struct {
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs,omitempty"`
		Data    []byte    `json:"data,omitempty"`
		Time    time.Time `json:"time"`
	} `json:"message"`
	Error *jetstream.APIError `json:"error,omitempty"`
}

type storedMsg struct {
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time
}

func (b *Bridge) getMsg(ctx context.Context, stream string, seq uint64) (*storedMsg, error) {
	var r msgGetResponse
	if err := apiRequest(ctx, b.nc, b.cfg.RequestTimeout, b.cfg.APIPrefix+".STREAM.MSG.GET."+stream, map[string]uint64{"seq": seq}, &r); err != nil {
		return nil, err
	}
	if r.Message == nil {
		return nil, errors.New("message get answered without a message")
	}
	m := &storedMsg{Subject: r.Message.Subject, Data: r.Message.Data, Time: r.Message.Time, Header: nats.Header{}}
	if len(r.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(r.Message.Header)
		if err != nil {
			return nil, fmt.Errorf("decode headers of %s #%d: %w", stream, seq, err)
		}
		m.Header = h
	}
	return m, nil
}
