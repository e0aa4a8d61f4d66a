package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/service"
)

// WorkloadConfig configures the synthetic workload.
type WorkloadConfig struct {
	// Speed multiplies every rate; tests run faster. Defaults to 1.
	Speed float64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Workload publishes and consumes on the demo streams:
//
//	ORDERS    limits, 20 msg/s; consumer billing keeps up, shipping handles
//	          12 msg/s so its lag grows steadily
//	PAYMENTS  work queue, 5 msg/s; consumer processor keeps up
//	AUDIT     limits, 2 msg/s; consumer archiver is never pulled: stalled
//	SENSORS   limits with discard new, filled to 97 % of max messages
//	TELEMETRY limits, binary frames; decoder terminates undecodable ones
//
// dashboard, loyalty and notifier run on the service package: healthy,
// flaky, and behind a circuit breaker whose downstream goes down (see
// startServices).
//
// An order saga runs across ORDERS and PAYMENTS (see saga.go): checkout
// takes orders.placed and asks PAYMENTS to capture; processor ships each
// order whose payment went through. Orders whose payment failed (the
// dead letters below) never ship: they are stuck, and the demo's
// saga_stuck rule says so.
//
// and a trickle of every kind of dead letter: billing naks large orders
// until MaxDeliver (Limits), processor naks some payments until MaxDeliver
// (WorkQueue), terminates others without a copy (payload unavailable) and
// dead-letters suspected fraud itself with an error text before Term.
type Workload struct {
	js     jetstream.JetStream
	cfg    WorkloadConfig
	logger *slog.Logger

	stop     context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	consumes []jetstream.ConsumeContext
	runners  []*service.Runner
	started  time.Time
}

// NewWorkload returns a workload on nc.
func NewWorkload(nc *nats.Conn, cfg WorkloadConfig) (*Workload, error) {
	cfg.Speed = cmp.Or(cfg.Speed, 1)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("demo workload: %w", err)
	}
	return &Workload{js: js, cfg: cfg, logger: cfg.Logger.With("component", "demo")}, nil
}

// Streams are the demo's streams, created (or updated) by Start.
var Streams = []jetstream.StreamConfig{
	{Name: "ORDERS", Description: "Orders placed in the demo shop", Subjects: []string{"orders.>"},
		MaxMsgs: 200_000, MaxAge: 24 * time.Hour},
	{Name: "PAYMENTS", Description: "Payment jobs, removed once processed", Subjects: []string{"payments.>"},
		Retention: jetstream.WorkQueuePolicy},
	{Name: "AUDIT", Description: "Audit trail; its archiver is down", Subjects: []string{"audit.>"},
		MaxAge: 24 * time.Hour},
	{Name: "SENSORS", Description: "Sensor readings, nearly full with discard new", Subjects: []string{"sensors.>"},
		MaxMsgs: 2000, Discard: jetstream.DiscardNew},
	{Name: "TELEMETRY", Description: "Binary telemetry frames", Subjects: []string{"telemetry.>"},
		MaxAge: 24 * time.Hour},
}

// sensorsFill is how many messages SENSORS holds: 97 % of its MaxMsgs.
const sensorsFill = 1940

// Start creates the streams and consumers and starts producing and
// consuming. It returns once everything is in place.
func (w *Workload) Start(ctx context.Context) error {
	for _, cfg := range Streams {
		if _, err := w.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("demo stream %s: %w", cfg.Name, err)
		}
	}
	consumers := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{
		{"ORDERS", jetstream.ConsumerConfig{Durable: "billing", Description: "Charges each order", AckPolicy: jetstream.AckExplicitPolicy,
			MaxDeliver: 5, BackOff: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}}},
		{"ORDERS", jetstream.ConsumerConfig{Durable: "shipping", Description: "Books a courier; slower than orders arrive",
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 50,
			FilterSubjects: []string{"orders.created", "orders.paid"}}},
		{"PAYMENTS", jetstream.ConsumerConfig{Durable: "processor", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 3}},
		{"AUDIT", jetstream.ConsumerConfig{Durable: "archiver", Description: "Archives to cold storage; its service is down",
			AckPolicy: jetstream.AckExplicitPolicy}},
		{"SENSORS", jetstream.ConsumerConfig{Durable: "dashboard", AckPolicy: jetstream.AckExplicitPolicy}},
		{"ORDERS", jetstream.ConsumerConfig{Durable: "loyalty", Description: "Awards points; its points service fails now and then",
			AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 3, FilterSubjects: []string{"orders.created"}}},
		{"ORDERS", jetstream.ConsumerConfig{Durable: "notifier", Description: "Emails the customer; its email gateway goes down now and then",
			AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 10, FilterSubjects: []string{"orders.paid"}}},
		{"TELEMETRY", jetstream.ConsumerConfig{Durable: "decoder", Description: "Decodes frames; terminates corrupt ones",
			AckPolicy: jetstream.AckExplicitPolicy}},
		{"ORDERS", jetstream.ConsumerConfig{Durable: "checkout", Description: "Starts each placed order's payment (the order saga)",
			AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 5, FilterSubjects: []string{sagaStart}}},
	}
	for _, c := range consumers {
		if _, err := w.js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg); err != nil {
			return fmt.Errorf("demo consumer %s/%s: %w", c.stream, c.cfg.Name, err)
		}
	}
	if err := w.fillSensors(ctx); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.stop = cancel
	w.produce(runCtx, 20, func(i int) (string, []byte) {
		subject := "orders.created"
		if i%3 == 0 {
			subject = "orders.paid"
		}
		return subject, fmt.Appendf(nil, `{"order_id":"ord-%06d","amount_cents":%d,"currency":"EUR"}`, i, 500+rand.IntN(20000))
	})
	w.produce(runCtx, 5, func(i int) (string, []byte) {
		return "payments.capture", fmt.Appendf(nil, `{"payment_id":"pay-%06d","order_id":"ord-%06d"}`, i, i)
	})
	w.placeOrders(runCtx, sagaRate)
	w.produce(runCtx, 2, func(i int) (string, []byte) {
		return "audit.login", fmt.Appendf(nil, `{"user":"user-%d","ip":"10.0.%d.%d"}`, i%50, i%255, i%200)
	})
	w.produce(runCtx, 1, func(i int) (string, []byte) {
		frame := make([]byte, 24)
		for j := range frame {
			frame[j] = byte(rand.IntN(256))
		}
		frame[0] = 0xF7 // a valid frame starts with 0xF7
		if i%10 == 0 {
			frame[0] = 0x00
		}
		return "telemetry.frame", frame
	})
	handlers := []struct {
		stream, consumer string
		handle           func(jetstream.Msg)
	}{
		{"ORDERS", "billing", w.bill},
		{"PAYMENTS", "processor", w.processPayment},
		{"TELEMETRY", "decoder", decodeFrame},
		{"ORDERS", "checkout", w.checkout},
	}
	for _, h := range handlers {
		if err := w.consume(ctx, h.stream, h.consumer, h.handle); err != nil {
			cancel()
			return err
		}
	}
	w.consumePaced(runCtx, "ORDERS", "shipping", 12)
	if err := w.startServices(ctx); err != nil {
		cancel()
		return err
	}
	return nil
}

// gatewayDown says whether the demo's email gateway is down: for a minute
// from 30 s after the start, then a minute in every four.
func (w *Workload) gatewayDown(now time.Time) bool {
	t := now.Sub(w.started) - 30*time.Second
	return t >= 0 && t%(4*time.Minute) < time.Minute
}

// startServices runs three sample services on the service package:
// dashboard (SENSORS) always succeeds; loyalty (orders.created) fails one
// time in seven, so it retries and now and then dead-letters after
// MaxDeliver; notifier (orders.paid) has a circuit breaker around an email
// gateway that is down for a minute from 30 s after the start, then a
// minute in every four: the breaker opens, lag grows, it half-opens and
// recovers.
func (w *Workload) startServices(ctx context.Context) error {
	w.started = time.Now()
	for _, cfg := range []service.Config{
		{Stream: "SENSORS", Consumer: "dashboard", Service: "dashboard",
			Handler: func(context.Context, jetstream.Msg) error { return nil }},
		{Stream: "ORDERS", Consumer: "loyalty", Service: "loyalty", Backoff: []time.Duration{time.Second, 3 * time.Second},
			Handler: func(context.Context, jetstream.Msg) error {
				if rand.IntN(7) == 0 {
					return errors.New("points-service: 503 Service Unavailable")
				}
				return nil
			}},
		{Stream: "ORDERS", Consumer: "notifier", Service: "notifier",
			Backoff: []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second},
			Breaker: &service.BreakerConfig{Name: "email-gateway", Failures: 5, OpenFor: 15 * time.Second},
			Handler: func(ctx context.Context, m jetstream.Msg) error {
				if w.gatewayDown(time.Now()) {
					return errors.New("email-gateway: dial tcp email-gateway.internal:587: connect: connection refused")
				}
				return nil
			}},
	} {
		cfg.Concurrency, cfg.Logger = 4, slog.New(serviceLogs{w.logger.Handler()})
		r, err := service.New(ctx, w.js, cfg)
		if err != nil {
			return fmt.Errorf("demo service %s: %w", cfg.Service, err)
		}
		if err := r.Start(ctx); err != nil {
			return err
		}
		w.runners = append(w.runners, r)
	}
	return nil
}

// Stop stops producing and consuming. Safe to call twice.
func (w *Workload) Stop() {
	w.stopOnce.Do(func() {
		if w.stop != nil {
			w.stop()
		}
		for _, r := range w.runners {
			r.Stop()
		}
		for _, cc := range w.consumes {
			cc.Stop()
		}
		w.wg.Wait()
	})
}

func (w *Workload) fillSensors(ctx context.Context) error {
	s, err := w.js.Stream(ctx, "SENSORS")
	if err != nil {
		return fmt.Errorf("demo stream SENSORS: %w", err)
	}
	have := int(s.CachedInfo().State.Msgs)
	for i := have; i < sensorsFill; i++ {
		w.js.PublishAsync(fmt.Sprintf("sensors.room%d.temp", i%8), fmt.Appendf(nil, `{"celsius":%.1f}`, 18+rand.Float64()*6)) //nolint:errcheck // checked below
	}
	select {
	case <-w.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("demo: filling SENSORS timed out")
	}
}

func (w *Workload) produce(ctx context.Context, perSecond float64, next func(i int) (string, []byte)) {
	w.wg.Go(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / (perSecond * w.cfg.Speed)))
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			subject, data := next(i)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := w.js.Publish(pctx, subject, data)
			cancel()
			if err != nil && ctx.Err() == nil {
				w.logger.Debug("demo publish failed", "subject", subject, "err", err)
			}
		}
	})
}

func (w *Workload) consume(ctx context.Context, stream, consumer string, handle func(jetstream.Msg)) error {
	c, err := w.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return fmt.Errorf("demo consumer %s/%s: %w", stream, consumer, err)
	}
	cc, err := c.Consume(handle)
	if err != nil {
		return fmt.Errorf("demo consume %s/%s: %w", stream, consumer, err)
	}
	w.consumes = append(w.consumes, cc)
	return nil
}

// consumePaced handles perSecond messages a second, like a service slower
// than its producer.
func (w *Workload) consumePaced(ctx context.Context, stream, consumer string, perSecond float64) {
	w.wg.Go(func() {
		c, err := w.js.Consumer(ctx, stream, consumer)
		if err != nil {
			w.logger.Warn("demo consumer unavailable", "stream", stream, "consumer", consumer, "err", err)
			return
		}
		t := time.NewTicker(time.Duration(float64(time.Second) / (perSecond * w.cfg.Speed)))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			for m := range batch.Messages() {
				m.Ack() //nolint:errcheck // a lost ack is redelivered
			}
		}
	})
}
