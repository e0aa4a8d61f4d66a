package alert

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSenderDurable is the consumer every replica's sender shares, so
// each notification goes to one of them.
const DefaultSenderDurable = "jetwatch-alert-sender"

// maxReceiverTimeout bounds a receiver's timeout, so one attempt always
// ends well within the consumer's ack wait.
const maxReceiverTimeout = time.Minute

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Rules returns the rules in force, for the receivers. Required.
	Rules func() *Rules
	// Log records every attempt. Required.
	Log *DeliveryLog
	// Outbox names the stream the notifications wait in.
	Outbox OutboxConfig
	// Durable is the consumer shared by all replicas. Defaults to
	// jetwatch-alert-sender.
	Durable string
	// MaxAttempts before a notification is given up and logged as failed.
	// Defaults to 10.
	MaxAttempts int
	// Backoff is the wait after the first failure; each next one doubles,
	// up to MaxBackoff, with jitter. Defaults to 1 second.
	Backoff time.Duration
	// MaxBackoff defaults to 5 minutes.
	MaxBackoff time.Duration
	// ExternalURL is the dashboard's address, linked from notifications.
	// Defaults to none.
	ExternalURL string
	// Client sends the requests. Defaults to a client without redirects.
	Client *http.Client
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Registerer receives the delivery and outbox metrics. Defaults to none.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Sender posts the outbox's notifications to their receivers.
type Sender struct {
	cfg        SenderConfig
	js         jetstream.JetStream
	logger     *slog.Logger
	deliveries *prometheus.CounterVec
	cc         jetstream.ConsumeContext
	kv         jetstream.KeyValue
}

// NewSender checks cfg and fills its defaults.
func NewSender(js jetstream.JetStream, cfg SenderConfig) (*Sender, error) {
	if cfg.Rules == nil || cfg.Log == nil {
		return nil, errors.New("alert: sender needs Rules and Log")
	}
	cfg.Outbox = cfg.Outbox.withDefaults()
	cfg.Durable = cmp.Or(cfg.Durable, DefaultSenderDurable)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 10)
	cfg.Backoff = cmp.Or(cfg.Backoff, time.Second)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 5*time.Minute)
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sender{cfg: cfg, js: js, logger: cfg.Logger.With("component", "alert-sender"),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_alert_notification_attempts_total",
			Help: "Webhook attempts by receiver and result (delivered, retrying, failed, dropped).",
		}, []string{"receiver", "result"})}
	if cfg.Registerer != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "jetwatch_alert_outbox_depth", Help: "Notifications waiting in the outbox stream.",
		}, s.outboxDepth)
		for _, c := range []prometheus.Collector{s.deliveries, depth} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("alert: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

func (s *Sender) outboxDepth() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.cfg.Outbox.Stream)
	if err != nil {
		return math.NaN()
	}
	return float64(st.CachedInfo().State.Msgs)
}

// Start creates the outbox and the shared consumer when missing and starts
// sending. It returns once consuming.
func (s *Sender) Start(ctx context.Context) error {
	kv, err := EnsureOutbox(ctx, s.js, s.cfg.Outbox)
	if err != nil {
		return err
	}
	s.kv = kv
	cons, err := s.js.CreateOrUpdateConsumer(ctx, s.cfg.Outbox.Stream, jetstream.ConsumerConfig{
		Durable: s.cfg.Durable, Description: "jetwatch alert webhook sender, shared by replicas",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * maxReceiverTimeout, MaxDeliver: -1,
		FilterSubject: s.cfg.Outbox.Prefix + ".>",
	})
	if err != nil {
		return fmt.Errorf("alert sender consumer %s on %s: %w", s.cfg.Durable, s.cfg.Outbox.Stream, err)
	}
	// One message at a time: a notification waiting in a client buffer
	// behind a slow receiver would pass its ack wait and be sent twice.
	// Left in the stream it waits for this or another replica instead.
	cc, err := cons.Consume(func(m jetstream.Msg) { s.handle(ctx, m) }, jetstream.PullMaxMessages(1))
	if err != nil {
		return fmt.Errorf("alert sender: consume %s: %w", s.cfg.Outbox.Stream, err)
	}
	s.cc = cc
	return nil
}

// Stop stops taking notifications; the one being sent finishes. Safe to
// call twice.
func (s *Sender) Stop() {
	if s.cc != nil {
		s.cc.Drain()
		<-s.cc.Closed()
	}
}

// handle makes one attempt at one notification.
func (s *Sender) handle(ctx context.Context, m jetstream.Msg) {
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	var n Notification
	if err := json.Unmarshal(m.Data(), &n); err != nil {
		s.logger.Error("outbox message is not a notification; dropped", "subject", m.Subject(), "err", err)
		m.Term() //nolint:errcheck // redelivery would fail the same way
		return
	}
	d := Delivery{ID: n.ID, Receiver: n.Receiver, Rule: n.Rule, Status: n.Status, Fingerprint: n.Fingerprint,
		Attempts: attempt, CreatedAt: n.CreatedAt}
	finish := func(result string, ack func() error) {
		d.Result, d.UpdatedAt = result, s.cfg.Now().UTC()
		d.LatencyMS = d.Latency.Milliseconds()
		if err := s.cfg.Log.record(ctx, d); err != nil {
			s.logger.Warn("delivery log not written", "err", err)
		}
		// The record other replicas (and a rebuilt index) read it from.
		if b, err := json.Marshal(d); err == nil {
			if _, err := s.js.Publish(ctx, deliveriesPrefix+"."+n.Receiver, b); err != nil {
				s.logger.Warn("delivery not recorded in "+s.cfg.Outbox.Deliveries+"; other replicas will not show it", "err", err)
			}
		}
		s.deliveries.WithLabelValues(n.Receiver, result).Inc()
		if err := ack(); err != nil {
			s.logger.Warn("outbox acknowledgement failed; the notification may be sent again with the same Idempotency-Key", "id", n.ID, "err", err)
		}
	}
	r, ok := s.cfg.Rules().Receiver(n.Receiver)
	if !ok {
		d.Error = "receiver " + n.Receiver + " is no longer in the rules file"
		s.logger.Warn("notification dropped", "id", n.ID, "rule", n.Rule, "why", d.Error)
		finish(ResultDropped, m.Term)
		return
	}
	if s.superseded(ctx, n) {
		// Sending it now would page for a problem already over, after
		// its resolution: receivers would be left firing.
		d.Error = "the alert resolved before this could be delivered"
		s.logger.Info("notification dropped", "id", n.ID, "rule", n.Rule, "why", d.Error)
		finish(ResultDropped, m.Term)
		return
	}
	d.HTTPStatus, d.Latency, d.Error = s.post(ctx, r, n)
	switch {
	case d.Error == "":
		finish(ResultDelivered, func() error { return m.DoubleAck(ctx) })
	case r.Format == FormatAlertmanagerAPI && refused(d.HTTPStatus):
		// Alertmanager refused the alert itself (a bad label, say): the
		// same body would be refused on every retry.
		s.logger.Error("notification refused by the receiver; not retried", "id", n.ID, "receiver", r.Name, "url", r.SafeURL(), "status", d.HTTPStatus, "err", d.Error)
		finish(ResultFailed, m.Term)
	case attempt >= s.cfg.MaxAttempts:
		s.logger.Error("notification failed; giving up", "id", n.ID, "receiver", r.Name, "url", r.SafeURL(), "attempts", attempt, "err", d.Error)
		finish(ResultFailed, m.Term)
	default:
		wait := s.backoff(attempt)
		s.logger.Warn("notification not delivered; will retry", "id", n.ID, "receiver", r.Name, "url", r.SafeURL(), "attempt", attempt, "retry_in", wait, "err", d.Error)
		finish(ResultRetrying, func() error { return m.NakWithDelay(wait) })
	}
}

// superseded says whether a firing notification's episode has ended.
// When the state cannot be read it is sent: a late page beats none.
func (s *Sender) superseded(ctx context.Context, n Notification) bool {
	if n.Status != StatusFiring {
		return false
	}
	entry, err := s.kv.Get(ctx, episodePrefix+n.Fingerprint)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	var ep episode
	if err := json.Unmarshal(entry.Value(), &ep); err != nil {
		return false
	}
	return !ep.StartsAt.Equal(n.StartsAt)
}

// post sends one request and says how it went; errText is empty on a 2xx.
func (s *Sender) post(ctx context.Context, r Receiver, n Notification) (status int, latency time.Duration, errText string) {
	body, err := Body(r.Format, n, s.cfg.ExternalURL)
	if err != nil {
		return 0, 0, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, min(time.Duration(r.Timeout), maxReceiverTimeout))
	defer cancel()
	target, err := r.endpoint()
	if err != nil {
		return 0, 0, "bad receiver URL"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "bad receiver URL"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jetwatch")
	req.Header.Set(IdempotencyHeader, n.ID)
	if r.Signed() {
		req.Header.Set(SignatureHeader, Sign(r.Secret, s.cfg.Now(), body))
	}
	start := time.Now()
	resp, err := s.cfg.Client.Do(req)
	latency = time.Since(start)
	if err != nil {
		// The URL may carry a token: say what failed without it.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return 0, latency, err.Error()
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // drained for connection reuse only
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, latency, "receiver answered " + resp.Status
	}
	return resp.StatusCode, latency, ""
}

// refused says whether an HTTP status means the request itself was wrong:
// a 4xx other than 429 (too many requests), which asks for a retry.
func refused(status int) bool {
	return status >= 400 && status <= 499 && status != http.StatusTooManyRequests
}

// backoff is the wait before attempt+1: exponential, capped, with jitter
// so replicas and receivers recovering together do not retry in step.
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.cfg.Backoff << min(attempt-1, 20)
	d = min(d, s.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}
