package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/directget"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// benchConcurrency is the runner's Concurrency in the benchmark: a
// service whose handler is this fast would set it this high.
const benchConcurrency = 256

// BenchmarkRunner compares, in one run and over the same kind of messages
// (50,000 of 256 bytes, each case its own copy), a bare Consume + Ack loop
// (with the client's default prefetch, and capped at the runner's
// Concurrency) with the runner, with breaker and idempotency off (plain),
// then on (full), and full with its bound: consuming and recording each
// message with nothing else, under the same Concurrency (and that bound
// plus the duplicate lookup). It reports each rate, the process's CPU per
// message, and the ratios. Bare is the mean of a run before and one after
// the others. Targets: plain >= 0.9 x bare; full >= 0.85 x bound.
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
	// bare is Consume + Ack; with jetstream.PullMaxMessages(benchConcurrency)
	// it holds no more messages in flight than the runner may.
	bare := func(b *testing.B, opts ...jetstream.PullConsumeOpt) result {
		name := prepare(b)
		defer done(b, name)
		cons, err := js.Consumer(ctx, name, "c")
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		all := make(chan struct{})
		start := startClock()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			m.Ack() //nolint:errcheck // benchmark
			if got.Add(1) == n {
				close(all)
			}
		}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		<-all
		res := start.stop(n)
		cc.Stop()
		return res
	}
	runner := func(b *testing.B, breakerAndIdempotency bool) result {
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
		start := startClock()
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-all
		res := start.stop(n)
		r.Stop()
		if cfg.ProcessedBucket != "" {
			if err := js.DeleteKeyValue(ctx, cfg.ProcessedBucket); err != nil {
				b.Fatal(err)
			}
		}
		return res
	}
	// bound is idempotent handling's own work and nothing else: each
	// message consumed, its processed-id record put without waiting (a
	// bucket configured as the runner's), and the message acked on the
	// record's PubAck, with no more than benchConcurrency messages pulled
	// and not yet acked, the runner's promise at that Concurrency, kept by
	// the runner's own standing pull (and nothing else of the runner). No
	// duplicate lookup, handler, breaker, claim, span or metric: the most
	// the full runner could reach. With lookups, each burst of messages
	// that has arrived is also looked up in the bucket first (one
	// multi_last direct get, one at a time, as the runner's), which
	// idempotent handling cannot skip: what that round trip costs.
	bound := func(b *testing.B, lookups bool) result {
		name := prepare(b)
		defer done(b, name)
		bucket := "bench_bound_" + name
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: 24 * time.Hour,
			Description: "ids of messages handled, for idempotent handling"})
		if err != nil {
			b.Fatal(err)
		}
		defer js.DeleteKeyValue(ctx, kv.Bucket()) //nolint:errcheck // benchmark
		direct, err := directget.NewClient(nc)
		if err != nil {
			b.Fatal(err)
		}
		defer direct.Close() //nolint:errcheck // benchmark
		var (
			mu      sync.Mutex
			pending = map[*nats.Msg]jetstream.Msg{}
			sent    atomic.Int64
			all     = make(chan struct{})
			slots   = make(chan struct{}, benchConcurrency)
			// Waited for before the bucket goes: records not yet acked,
			// and the goroutines that fetch and record.
			records, pulls sync.WaitGroup
		)
		pub, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(benchConcurrency),
			jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, rec *nats.Msg, _ *jetstream.PubAck) {
				mu.Lock()
				m := pending[rec]
				delete(pending, rec)
				mu.Unlock()
				m.Ack() //nolint:errcheck // benchmark
				<-slots
				records.Done()
			}),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
				b.Error(err)
				records.Done()
			}))
		if err != nil {
			b.Fatal(err)
		}
		// Pulled as the runner pulls: its standing pull, holding each
		// message's slot from its pull request to its ack, and nothing
		// else of the runner. Its hand-over is buffered (it never holds
		// more than the slots), so the messages that have arrived form a
		// burst for one lookup, as the runner's workers' lookups join.
		puller := &Runner{js: js, cfg: Config{Stream: name, Consumer: "c", Concurrency: benchConcurrency}, logger: quiet,
			slots: slots, work: make(chan jetstream.Msg, benchConcurrency)}
		fetchCtx, stop := context.WithCancel(ctx)
		start := startClock()
		pulls.Go(func() {
			defer close(puller.work)
			puller.pull(fetchCtx)
		})
		pulls.Go(func() {
			msgs := puller.work
			for m := range msgs {
				burst := []jetstream.Msg{m}
				for more := true; lookups && more; {
					select {
					case m, ok := <-msgs:
						if !ok {
							more = false
							break
						}
						burst = append(burst, m)
					default:
						more = false
					}
				}
				subjects := make([]string, len(burst))
				for i, m := range burst {
					id := sha256.Sum256([]byte(m.Headers().Get(jetstream.MsgIDHeader)))
					subjects[i] = "$KV." + bucket + ".c." + hex.EncodeToString(id[:16])
				}
				if lookups {
					err := direct.Request(ctx, directget.Subject(js, "KV_"+bucket), struct {
						MultiLast []string `json:"multi_last"`
					}{subjects}, func(*nats.Msg) error { return errors.New("no message is a duplicate here") })
					if err != nil {
						b.Error(err)
					}
				}
				for i, m := range burst {
					rec := &nats.Msg{Subject: subjects[i], Data: []byte("12345")}
					mu.Lock()
					pending[rec] = m
					mu.Unlock()
					records.Add(1)
					if _, err := pub.PublishMsgAsync(rec); err != nil {
						b.Error(err)
						records.Done()
					}
					// Counted where the runner's handler would count it.
					if sent.Add(1) == n {
						close(all)
					}
				}
			}
		})
		<-all
		res := start.stop(n)
		stop()
		pulls.Wait()
		records.Wait()
		return res
	}
	// BENCH_ONLY names the cases to run, to profile or compare some alone
	// (bare, plain, bound, lookup, full; comma-separated). Unset, all run.
	only := os.Getenv("BENCH_ONLY")
	runs := func(name string) bool { return only == "" || slices.Contains(strings.Split(only, ","), name) }
	var bareRun, cappedRun, plainRun, fullRun, boundRun, lookupRun result
	capped := jetstream.PullMaxMessages(benchConcurrency)
	for range b.N {
		if runs("bare") {
			// Bare first and last, so load from elsewhere on the machine
			// drifting during the run weighs on both sides alike.
			bareRun.add(bare(b), 0.5)
			cappedRun.add(bare(b, capped), 0.5)
		}
		if runs("plain") {
			plainRun.add(runner(b, false), 1)
		}
		if runs("bound") {
			boundRun.add(bound(b, false), 1)
		}
		if runs("lookup") {
			lookupRun.add(bound(b, true), 1)
		}
		if runs("full") {
			fullRun.add(runner(b, true), 1)
		}
		if runs("bare") {
			cappedRun.add(bare(b, capped), 0.5)
			bareRun.add(bare(b), 0.5)
		}
	}
	for _, c := range []struct {
		name string
		r    result
	}{{"bare", bareRun}, {"capped", cappedRun}, {"plain", plainRun}, {"bound", boundRun}, {"lookup", lookupRun}, {"full", fullRun}} {
		if c.r.rate > 0 {
			b.ReportMetric(c.r.rate/float64(b.N), c.name+"-msgs/s")
			b.ReportMetric(c.r.cpu/float64(b.N), c.name+"-cpu-µs/msg")
			if c.r.writes > 0 {
				b.ReportMetric(c.r.writes/float64(b.N), c.name+"-writes/msg")
			}
		}
	}
	ratio := func(x, y result, name string) {
		if x.rate > 0 && y.rate > 0 {
			b.ReportMetric(x.rate/y.rate, name)
		}
	}
	ratio(plainRun, bareRun, "plain/bare")
	// The same, against a bare loop held to the runner's Concurrency.
	ratio(plainRun, cappedRun, "plain/capped")
	// The target for breaker+idempotency: >= 0.85 of the bound.
	ratio(fullRun, boundRun, "full/bound")
	ratio(boundRun, bareRun, "bound/bare")
	// What the lookup round trip leaves of the bound, and full against
	// that.
	ratio(lookupRun, boundRun, "lookup/bound")
	ratio(fullRun, lookupRun, "full/lookup")
}

// result is one case's rate, and the process's CPU time (user and system,
// the in-process server's included) per message, in µs: on a machine
// shared with other work the rate moves with the CPU the process is
// given, the CPU per message much less.
// writes is the process's write system calls (socket writes, the
// server's file writes) per message, where the system tells
// (/proc/self/io): each costs both sides a wake-up, so how well the
// client and server batch shows here.
type result struct{ rate, cpu, writes float64 }

func (r *result) add(o result, weight float64) {
	r.rate += o.rate * weight
	r.cpu += o.cpu * weight
	r.writes += o.writes * weight
}

// clock is where a case's measurement started.
type clock struct {
	wall   time.Time
	cpu    time.Duration
	writes int64
}

func startClock() clock { return clock{time.Now(), processCPU(), processWrites()} }

// stop is the result of n messages since c.
func (c clock) stop(n int) result {
	wall := time.Since(c.wall)
	return result{rate: float64(n) / wall.Seconds(), cpu: float64((processCPU() - c.cpu).Microseconds()) / float64(n),
		writes: float64(processWrites()-c.writes) / float64(n)}
}

// processWrites is how many write system calls the process has made, 0
// where /proc/self/io does not say.
func processWrites() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
