package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// benchConcurrency is the runner's Concurrency in the benchmark: a
// service whose handler is this fast would set it this high.
const benchConcurrency = 256

// BenchmarkRunner compares, in one run and over the same kind of messages
// (50,000 of 256 bytes, each case its own copy), a bare Consume + Ack loop
// with the runner, with breaker and idempotency off, then on. It reports
// each rate and the runner's rates as a fraction of the bare one (the
// mean of a bare run before and one after the runner's). Targets: plain
// >= 0.9 x bare; breaker+idempotency >= 0.85 x the record bound (consuming
// and writing one processed-id record per message, at the rates measured
// in the same run: full/record-bound).
//
//	go test -tags sqlite_fts5 -run xxx -bench Runner -benchtime 1x -count 5 ./service
func BenchmarkRunner(b *testing.B) {
	const n = 50_000
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	payload := make([]byte, 256)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var streams int
	// prepare gives a case a fresh stream of n messages (ids unique to it,
	// so JetStream's duplicate window never drops one) and a consumer.
	prepare := func(b *testing.B) string {
		b.Helper()
		streams++
		name := fmt.Sprintf("BENCH%d", streams)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := js.PublishAsync(name+".job", payload, jetstream.WithMsgID(fmt.Sprintf("%s-%d", name, i))); err != nil {
				b.Fatal(err)
			}
			// In chunks: on a loaded machine 4,000 pending acks (the
			// client's limit) can stall past its wait and fail.
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
	bare := func(b *testing.B) float64 {
		name := prepare(b)
		defer done(b, name)
		cons, err := js.Consumer(ctx, name, "c")
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		all := make(chan struct{})
		start := time.Now()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			m.Ack() //nolint:errcheck // benchmark
			if got.Add(1) == n {
				close(all)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		<-all
		rate := n / time.Since(start).Seconds()
		cc.Stop()
		return rate
	}
	runner := func(b *testing.B, breakerAndIdempotency bool) float64 {
		name := prepare(b)
		defer done(b, name)
		var got atomic.Int64
		all := make(chan struct{})
		cfg := Config{Stream: name, Consumer: "c", Service: "bench", Concurrency: benchConcurrency, Logger: quiet,
			Handler: func(ctx context.Context, m jetstream.Msg) error {
				if got.Add(1) == n {
					close(all)
				}
				return nil
			}}
		if breakerAndIdempotency {
			cfg.Breaker = &BreakerConfig{Name: name}
			cfg.ProcessedBucket = "bench_processed_" + name
		}
		r, err := New(ctx, js, cfg)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-all
		rate := n / time.Since(start).Seconds()
		r.Stop()
		if cfg.ProcessedBucket != "" {
			if err := js.DeleteKeyValue(ctx, cfg.ProcessedBucket); err != nil {
				b.Fatal(err)
			}
		}
		return rate
	}
	// records is the fastest way to write n processed-id records: async
	// KV puts, no consuming. Idempotency costs at least this much work per
	// message on top of the bare loop, whatever the runner does.
	records := func(b *testing.B) float64 {
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bench_records", TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		defer js.DeleteKeyValue(ctx, kv.Bucket()) //nolint:errcheck // benchmark
		start := time.Now()
		for i := range n {
			// A burst, as fast as the client's 4,000 pending acks allow;
			// the long stall wait only keeps a loaded machine from failing it.
			if _, err := js.PublishAsync(fmt.Sprintf("$KV.bench_records.c.%032x", i), []byte("12345"), jetstream.WithStallWait(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		return n / time.Since(start).Seconds()
	}
	// BENCH_ONLY=plain or =full runs one case alone, to profile it.
	only := os.Getenv("BENCH_ONLY")
	var bareRate, plainRate, fullRate, recordRate float64
	for range b.N {
		if only == "" {
			// Bare first and last, so load from elsewhere on the machine
			// drifting during the run weighs on both sides alike.
			bareRate += bare(b) / 2
			recordRate += records(b)
		}
		if only == "" || only == "plain" {
			plainRate += runner(b, false)
		}
		if only == "" || only == "full" {
			fullRate += runner(b, true)
		}
		if only == "" {
			bareRate += bare(b) / 2
		}
	}
	per := func(v float64) float64 { return v / float64(b.N) }
	b.ReportMetric(per(plainRate), "plain-msgs/s")
	b.ReportMetric(per(fullRate), "full-msgs/s")
	if only == "" {
		b.ReportMetric(per(bareRate), "bare-msgs/s")
		b.ReportMetric(per(recordRate), "kv-puts/s")
		b.ReportMetric(plainRate/bareRate, "plain/bare")
		b.ReportMetric(fullRate/bareRate, "full/bare")
		// Consuming and recording one after the other for each message,
		// at the rates measured: the most idempotent handling can reach.
		b.ReportMetric(1/(1+bareRate/recordRate), "record-bound/bare")
		// The target for breaker+idempotency: >= 0.85 of that bound.
		b.ReportMetric(fullRate/bareRate*(1+bareRate/recordRate), "full/record-bound")
	}
}
