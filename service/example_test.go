package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/service"
)

// A service that resizes images: at most 8 at once, retries on a backoff,
// dead-letters what it cannot decode so the dashboard shows it with the
// payload, and on SIGTERM finishes what it started.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Drain() //nolint:errcheck // exiting
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	runner, err := service.New(ctx, js, service.Config{
		Stream: "IMAGES", Consumer: "resizer", Service: "resizer",
		Concurrency: 8,
		Handler: func(ctx context.Context, msg jetstream.Msg) error {
			var job struct {
				URL string `json:"url"`
			}
			if err := json.Unmarshal(msg.Data(), &job); err != nil {
				return service.Permanent(err) // no retry can fix bad JSON
			}
			if job.URL == "" {
				return service.Permanent(errors.New("job without url"))
			}
			return resize(ctx, job.URL) // an error here is retried
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := runner.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-ctx.Done()
	runner.Stop()
}

func resize(ctx context.Context, url string) error { return nil }
