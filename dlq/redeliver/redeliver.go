package redeliver

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
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// HeaderRedeliveredFrom marks a redelivered message with the dead letter it
// came from, so the service that gets it again can tell.
const HeaderRedeliveredFrom = "Jetwatch-Redelivered-From"

// Errors of actions, each with a clear message for the operator.
var (
	ErrAlreadyRedelivered = errors.New("already redelivered")
	ErrAlreadyDiscarded   = errors.New("already discarded")
	ErrPayloadUnavailable = errors.New("the payload of this dead letter is unavailable: edit it to send a new one")
	ErrNoStream           = errors.New("no stream captures the subject")
	ErrBadSubject         = errors.New("bad subject")
	ErrTooLarge           = errors.New("the message is larger than the NATS server takes")
	// ErrNotSent: the target did not take the message; nothing is marked.
	ErrNotSent = errors.New("the target stream did not take the message")
	// ErrNotRecorded: the message was sent but the action could not be
	// recorded; retrying is safe, the message id prevents a second send.
	ErrNotRecorded = errors.New("the message was sent, but recording the action failed")
	// ErrNATSUnavailable: NATS could not be asked, so nothing was sent.
	ErrNATSUnavailable = errors.New("NATS did not answer")
)

// Request says what to redeliver and how.
type Request struct {
	ID    uint64
	Actor string
	// Subject overrides the origin subject.
	Subject string
	// Payload and Headers, when not nil, replace the original's (edit and
	// redeliver).
	Payload []byte
	Headers map[string][]string
}

// Config configures a Redeliverer.
type Config struct {
	// Stream holds the dead letters' messages. Defaults to DLQ.
	Stream string
	// ActionsStream records actions. Defaults to JETWATCH_DLQ_ACTIONS.
	ActionsStream string
	// Timeout bounds each publish. Defaults to 5 seconds.
	Timeout time.Duration
	// Registerer receives the redelivery metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// TracerProvider traces each redelivery and discard as a span linked
	// to the dead letter's original trace. Defaults to no tracing.
	TracerProvider trace.TracerProvider
	// Policy says where dead letters may be redelivered; Stream and
	// ActionsStream are added to its own streams.
	Policy TargetPolicy
	// StaleAfter is how long a started redelivery may go without ending
	// before it counts as interrupted (a crash), so that redelivering
	// again resumes it. Defaults to three times Timeout.
	StaleAfter time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock actions are stamped and judged stale by. Defaults
	// to time.Now.
	Now func() time.Time
}

// Redeliverer publishes dead letters back and records every action in
// JetStream. Each send carries a Nats-Msg-Id derived from the dead letter
// and the attempt, so a double click, a retried request or a restart
// mid-action sends at most once within the target's duplicate window.
type Redeliverer struct {
	js      jetstream.JetStream
	db      *store.DB
	queries *query.Queries
	cfg     Config

	results *prometheus.CounterVec
	tracer  trace.Tracer

	mu    sync.Mutex
	locks map[uint64]*sync.Mutex
}

// NewRedeliverer returns a redeliverer publishing on nc.
func New(nc *nats.Conn, db *store.DB, cfg Config) (*Redeliverer, error) {
	cfg.Stream = cmp.Or(cfg.Stream, "DLQ")
	cfg.ActionsStream = cmp.Or(cfg.ActionsStream, "JETWATCH_DLQ_ACTIONS")
	cfg.Timeout = cmp.Or(cfg.Timeout, 5*time.Second)
	cfg.StaleAfter = cmp.Or(cfg.StaleAfter, 3*cfg.Timeout)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	cfg.Policy.OwnStreams = append(slices.Clip(cfg.Policy.OwnStreams), cfg.Stream, cfg.ActionsStream)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	r := &Redeliverer{js: js, db: db, queries: query.New(db, js, cfg.Stream), cfg: cfg, locks: map[uint64]*sync.Mutex{},
		tracer: tracecontext.Tracer(cfg.TracerProvider, tracerName),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_redeliveries_total",
			Help: "Redeliveries and discards of dead letters, by action and result (sent, duplicate, refused, failed).",
		}, []string{"action", "result"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.results); err != nil {
			return nil, fmt.Errorf("register redelivery metrics: %w", err)
		}
	}
	return r, nil
}

// count records the outcome of an action for the metrics.
func (r *Redeliverer) count(action string, err error) {
	r.results.WithLabelValues(action, actionResult(err)).Inc()
}

// actionResult names an action's outcome: sent, duplicate, refused or
// failed.
func actionResult(err error) string {
	switch {
	case err == nil:
		return "sent"
	case errors.Is(err, ErrAlreadyRedelivered), errors.Is(err, ErrAlreadyDiscarded), errors.Is(err, ErrInProgress), errors.Is(err, ErrInterrupted):
		return "duplicate"
	case errors.Is(err, ErrNoStream), errors.Is(err, ErrBadSubject), errors.Is(err, ErrPayloadUnavailable), errors.Is(err, store.ErrNotFound),
		errors.Is(err, ErrTargetRefused), errors.Is(err, ErrBadHeader), errors.Is(err, ErrTooLarge):
		return "refused"
	}
	return "failed"
}

// lock serialises actions on one dead letter within this process; the
// message ids cover several processes.
func (r *Redeliverer) lock(id uint64) func() {
	r.mu.Lock()
	l, ok := r.locks[id]
	if !ok {
		l = &sync.Mutex{}
		r.locks[id] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Redeliver publishes a dead letter to its origin subject (or req.Subject),
// with the original headers minus the Dlq- and server headers, and records
// the action around the send (see claim). When the redelivery's span is
// recorded (it links to the original trace), the message carries its trace
// context, so the service's processing continues the redelivery's trace;
// otherwise it keeps the original traceparent.
func (r *Redeliverer) Redeliver(ctx context.Context, req Request) (a dlq.Action, err error) {
	ctx, span := r.startAction(ctx, dlq.ActionRedeliver, req.ID)
	defer func() { endAction(span, a, err) }()
	defer r.lock(req.ID)()
	defer func() { r.count(dlq.ActionRedeliver, err) }()
	// The attempt numbers the message id. Only a redelivery that ended as
	// sent counts, so a retry after a failure, or resuming one a crash
	// interrupted, sends under the same id and JetStream keeps one.
	attempt, err := r.attempts(ctx, req.ID)
	if err != nil {
		return dlq.Action{}, err
	}
	attempt++
	d, err := r.queries.Get(ctx, req.ID)
	if err != nil {
		return dlq.Action{}, err
	}
	linkOriginal(span, d)
	msg, err := redelivery(d, req, attempt)
	if err != nil {
		return dlq.Action{}, err
	}
	if _, err := r.targetStream(ctx, msg.Subject, nil); err != nil {
		return dlq.Action{}, err
	}
	subject, edited := msg.Subject, req.Payload != nil || req.Headers != nil
	a = dlq.Action{DeadLetter: d.ID, Action: dlq.ActionRedeliverStart, Actor: req.Actor, At: r.now(), Attempt: attempt,
		Subject: subject, Edited: edited}
	start, err := r.claim(ctx, a)
	if err != nil {
		return dlq.Action{}, err
	}
	tracecontext.Inject(ctx, msg.Header)
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	ack, err := r.js.PublishMsg(pctx, msg)
	if err != nil {
		err = publishError(subject, err)
		failed := a
		failed.Action, failed.At, failed.Note = dlq.ActionRedeliverFail, r.now(), err.Error()
		if rerr := r.recordAfter(ctx, failed, start); rerr != nil {
			// The start stays the newest record: after a while, the next
			// redelivery resumes it, under the same message id.
			r.cfg.Logger.Warn("a failed redelivery could not be recorded as failed", "dead_letter", d.ID, "err", rerr)
		}
		return dlq.Action{}, err
	}
	a.Action, a.At = dlq.ActionRedeliver, r.now()
	a.AckStream, a.AckSeq, a.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	if err := r.recordAfter(ctx, a, start); err != nil {
		return a, err
	}
	if ack.Duplicate {
		// An interrupted redelivery of this attempt had sent it: it was
		// sent once, and is now recorded.
		return a, ErrAlreadyRedelivered
	}
	return a, nil
}

// Discard marks a dead letter as handled without sending it anywhere.
func (r *Redeliverer) Discard(ctx context.Context, id uint64, actor, note string) (a dlq.Action, err error) {
	ctx, span := r.startAction(ctx, dlq.ActionDiscard, id)
	defer func() { endAction(span, a, err) }()
	defer r.lock(id)()
	defer func() { r.count(dlq.ActionDiscard, err) }()
	d, err := r.queries.Get(ctx, id)
	if err != nil {
		return dlq.Action{}, err
	}
	linkOriginal(span, d)
	a = dlq.Action{DeadLetter: id, Action: dlq.ActionDiscard, Actor: actor, At: r.now(), Note: note}
	if _, err := r.claim(ctx, a); err != nil {
		return dlq.Action{}, err
	}
	return a, nil
}

// redelivery builds the message that redelivers d as attempt number
// attempt: the original (or edited) payload and headers without the
// envelope and server headers, and a message id of the dead letter and the
// attempt.
func redelivery(d store.DeadLetter, req Request, attempt int) (*nats.Msg, error) {
	if !d.PayloadAvailable && req.Payload == nil {
		return nil, ErrPayloadUnavailable
	}
	subject := cmp.Or(strings.TrimSpace(req.Subject), d.Subject)
	if subject == "" {
		return nil, fmt.Errorf("%w: the dead letter does not say which subject it came from: give one", ErrBadSubject)
	}
	msg := nats.NewMsg(subject)
	msg.Data = d.Payload
	if req.Payload != nil {
		msg.Data = req.Payload
	}
	headers := d.Headers
	if req.Headers != nil {
		headers = req.Headers
	}
	for k, v := range headers {
		// The envelope is jetwatch's; Nats-* headers steer the server
		// (expected stream or sequence, rollups, message ids, TTLs).
		if envelopeHeader(k) || serverHeader(k) {
			continue
		}
		msg.Header[k] = append([]string(nil), v...)
	}
	if err := checkHeaders(msg.Header); err != nil {
		return nil, err
	}
	msg.Header.Set(HeaderRedeliveredFrom, "DLQ #"+strconv.FormatUint(d.ID, 10))
	msg.Header.Set(jetstream.MsgIDHeader, "jetwatch-redeliver:"+strconv.FormatUint(d.ID, 10)+":"+strconv.Itoa(attempt))
	return msg, nil
}

// publishError says what a failed redelivery publish means.
func publishError(subject string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w %s: nothing was sent, and the dead letter stays pending", ErrNoStream, subject)
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: its headers and payload together exceed the server's max_payload; nothing was sent", ErrTooLarge)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrReconnectBufExceeded):
		return fmt.Errorf("%w (%v): nothing was sent, and the dead letter stays pending", ErrNATSUnavailable, err)
	}
	return fmt.Errorf("%w (%v): nothing is marked redelivered", ErrNotSent, err)
}

func (r *Redeliverer) attempts(ctx context.Context, id uint64) (int, error) {
	n, err := r.db.CountDeadLetterActions(ctx, []uint64{id}, dlq.ActionRedeliver)
	return n[id], err
}

// now is the redeliverer's clock, in UTC.
func (r *Redeliverer) now() time.Time { return r.cfg.Now().UTC() }
