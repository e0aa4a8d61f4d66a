package watermill

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/service"
)

const (
	// messages is how many each case handles, 256 bytes each.
	messages = 50_000
	// handlers is jetwatch's Concurrency and watermill's number of router
	// handlers: watermill's fastest setup for a pull consumer (each
	// handler is a subscription that handles one message at a time).
	handlers = 256
)

// BenchmarkAgainstWatermill runs, in one run, jetwatch's runner and
// watermill's router over the same kind of messages (each case its own
// stream of the same messages): plain (a no-op handler), then full
// (jetwatch: breaker and idempotency with a durable processed-id record;
// watermill: Retry, Deduplicator, CircuitBreaker and PoisonQueue
// middleware, AckAsync off as its default). It reports each rate and
// jetwatch's as a multiple of watermill's; the goal is >= 1.0 for both.
func BenchmarkAgainstWatermill(b *testing.B) {
	srv := natstest.RunServer(b)
	js, err := jetstream.New(natstest.Connect(b, srv))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var streams int
	// prepare gives a case a fresh stream of the messages and a durable
	// pull consumer "c" on it. The stream's name is its subject, as
	// watermill's topics want. Payloads differ (watermill's deduplicator
	// hashes them); Nats-Msg-Ids too (jetwatch's keys on them).
	prepare := func(b *testing.B) string {
		b.Helper()
		streams++
		name := fmt.Sprintf("BENCH%d", streams)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}}); err != nil {
			b.Fatal(err)
		}
		for i := range messages {
			payload := make([]byte, 256)
			copy(payload, fmt.Sprintf("%s-%d", name, i))
			if _, err := js.PublishAsync(name, payload, jetstream.WithMsgID(fmt.Sprintf("%s-%d", name, i))); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		if _, err := js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			b.Fatal(err)
		}
		return name
	}
	done := func(b *testing.B, name string) {
		b.Helper()
		if err := js.DeleteStream(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runJetwatch := func(b *testing.B, full bool) float64 {
		name := prepare(b)
		defer done(b, name)
		var got atomic.Int64
		all := make(chan struct{})
		cfg := service.Config{Stream: name, Consumer: "c", Service: "bench", Concurrency: handlers, Logger: quiet,
			Handler: func(ctx context.Context, m jetstream.Msg) error {
				if got.Add(1) == messages {
					close(all)
				}
				return nil
			}}
		if full {
			cfg.Breaker = &service.BreakerConfig{Name: name}
			cfg.ProcessedBucket = "bench_processed_" + name
		}
		r, err := service.New(ctx, js, cfg)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-all
		rate := messages / time.Since(start).Seconds()
		r.Stop()
		if full {
			if err := js.DeleteKeyValue(ctx, cfg.ProcessedBucket); err != nil {
				b.Fatal(err)
			}
		}
		return rate
	}
	runWatermill := func(b *testing.B, full bool) float64 {
		name := prepare(b)
		defer done(b, name)
		rate, err := watermillRate(srv, name, full)
		if err != nil {
			b.Fatal(err)
		}
		return rate
	}
	var jwPlain, wmPlain, jwFull, wmFull float64
	for range b.N {
		// Each pair back to back, in turn first and second, so load from
		// elsewhere on the machine weighs on both sides alike.
		jwPlain += runJetwatch(b, false)
		wmPlain += runWatermill(b, false)
		wmFull += runWatermill(b, true)
		jwFull += runJetwatch(b, true)
	}
	n := float64(b.N)
	b.ReportMetric(jwPlain/n, "jetwatch-plain-msgs/s")
	b.ReportMetric(wmPlain/n, "watermill-plain-msgs/s")
	b.ReportMetric(jwFull/n, "jetwatch-full-msgs/s")
	b.ReportMetric(wmFull/n, "watermill-full-msgs/s")
	b.ReportMetric(jwPlain/wmPlain, "plain-jetwatch/watermill")
	b.ReportMetric(jwFull/wmFull, "full-jetwatch/watermill")
}

// watermillRate consumes stream's messages through consumer "c" with a
// watermill Router of handlers subscriptions, and returns the rate. It
// connects anew: closing watermill's subscriber drains its connection.
func watermillRate(srv *server.Server, stream string, full bool) (float64, error) {
	logger := watermill.NopLogger{}
	var got atomic.Int64
	all := make(chan struct{})
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{URL: srv.ClientURL(), Logger: logger,
		ResourceInitializer: wmjetstream.ExistingConsumer(func(string, string) jetstream.ConsumerConfig {
			return jetstream.ConsumerConfig{Name: "c"}
		}, "")})
	if err != nil {
		return 0, err
	}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return 0, err
	}
	if full {
		pub, err := wmjetstream.NewPublisher(wmjetstream.PublisherConfig{URL: srv.ClientURL(), Logger: logger})
		if err != nil {
			return 0, err
		}
		defer pub.Close() //nolint:errcheck // benchmark
		poison, err := middleware.PoisonQueue(pub, "poison")
		if err != nil {
			return 0, err
		}
		// Outermost first: what fails after the retries goes to the poison
		// queue; the breaker and the deduplicator wrap each attempt.
		router.AddMiddleware(poison,
			middleware.Retry{MaxRetries: 3, InitialInterval: time.Second, Logger: logger}.Middleware,
			middleware.NewCircuitBreaker(gobreaker.Settings{Name: stream}).Middleware,
			// Keyed by a SHA-256 of the payload, as jetwatch's records are
			// by one of the message id: the default Adler-32 takes some
			// of these payloads for one another and drops them.
			(&middleware.Deduplicator{KeyFactory: middleware.NewMessageHasherSHA256(math.MaxInt64)}).Middleware)
	}
	for i := range handlers {
		router.AddConsumerHandler(fmt.Sprintf("h%d", i), stream, sub, func(*message.Message) error {
			if got.Add(1) == messages {
				close(all)
			}
			return nil
		})
	}
	start := time.Now()
	ran := make(chan error, 1)
	go func() { ran <- router.Run(context.Background()) }()
	select {
	case <-all:
	case err := <-ran:
		return 0, fmt.Errorf("router stopped: %w", err)
	}
	rate := messages / time.Since(start).Seconds()
	if err := router.Close(); err != nil {
		return 0, err
	}
	return rate, <-ran
}
