// Command jetwatch-bench measures what the foundation issue names on an
// in-process NATS server holding many streams and consumers: one full sample
// cycle, a /metrics scrape and an overview render, and, in the same run and
// against the same server, natscli's `nats stream report` plus `nats
// consumer report` for every stream when `nats` is on PATH. It prints a
// table.
//
//	go run -tags sqlite_fts5 ./cmd/jetwatch-bench -streams 1000 -consumers 10
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/web"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jetwatch-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	streams := flag.Int("streams", 1000, "streams to create")
	consumers := flag.Int("consumers", 10, "consumers per stream")
	messages := flag.Int("messages", 10, "messages per stream")
	rounds := flag.Int("rounds", 5, "sample cycles to time")
	scrapes := flag.Int("scrapes", 20, "metrics scrapes and overview renders to time")
	natsCLI := flag.String("nats", "nats", "natscli binary; empty to skip the comparison")
	flag.Parse()

	dir, err := os.MkdirTemp("", "jetwatch-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir + "/nats",
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 4 << 30, JetStreamMaxStore: 64 << 30})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats server did not start")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()

	ctx := context.Background()
	start := time.Now()
	if err := populate(ctx, nc, *streams, *consumers, *messages); err != nil {
		return err
	}
	fmt.Printf("created %d streams x %d consumers, %d messages each, in %s\n\n", *streams, *consumers, *messages, time.Since(start).Round(time.Millisecond))

	db, err := store.Open(ctx, dir+"/index")
	if err != nil {
		return err
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sampler, err := collector.NewSampler(nc, db, collector.SamplerConfig{Registerer: reg, Logger: quiet})
	if err != nil {
		return err
	}
	var cycle []time.Duration
	for range *rounds {
		t0 := time.Now()
		c, err := sampler.SampleOnce(ctx)
		if err != nil {
			return err
		}
		cycle = append(cycle, time.Since(t0))
		if len(c.Consumers) != *streams**consumers {
			return fmt.Errorf("sampled %d consumers, want %d", len(c.Consumers), *streams**consumers)
		}
	}

	srv, err := web.New(web.Config{
		Index:          db,
		NATSState:      func() web.NATSState { return web.NATSState{Connected: true} },
		SamplerState:   func() store.SamplerState { return store.SamplerState{FirstCycleDone: true, LastCycleAt: time.Now()} },
		Gatherer:       reg,
		SampledMetrics: sampler.WriteMetrics,
		Logger:         quiet,
	})
	if err != nil {
		return err
	}
	h := srv.Handler()
	timeGet := func(path string, gz bool) ([]time.Duration, int, error) {
		var ds []time.Duration
		size := 0
		for range *scrapes {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			t0 := time.Now()
			h.ServeHTTP(rec, req)
			ds = append(ds, time.Since(t0))
			if rec.Code != http.StatusOK {
				return nil, 0, fmt.Errorf("GET %s: %d", path, rec.Code)
			}
			size = rec.Body.Len()
		}
		return ds, size, nil
	}
	metrics, metricsSize, err := timeGet("/metrics", false)
	if err != nil {
		return err
	}
	metricsGz, metricsGzSize, err := timeGet("/metrics", true)
	if err != nil {
		return err
	}
	overview, overviewSize, err := timeGet("/", false)
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "measure\truns\tmin\tmedian\tmax\ttarget\t")
	row := func(name string, ds []time.Duration, target string) {
		slices.Sort(ds)
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, len(ds), ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), target)
	}
	row("sample cycle (all streams and consumers)", cycle, "<= 2000 ms")
	row(fmt.Sprintf("/metrics scrape (%d KiB)", metricsSize/1024), metrics, "<= 100 ms")
	row(fmt.Sprintf("/metrics scrape, gzip (%d KiB)", metricsGzSize/1024), metricsGz, "<= 100 ms")
	row(fmt.Sprintf("overview render (%d KiB)", overviewSize/1024), overview, "<= 50 ms")

	if *natsCLI != "" {
		if path, err := exec.LookPath(*natsCLI); err != nil {
			fmt.Fprintf(w, "natscli\t-\t-\t-\t-\tnot on PATH: go install github.com/nats-io/natscli/nats@v0.5.0\t\n")
		} else {
			d, err := natsReports(path, ns.ClientURL(), *streams)
			if err != nil {
				return err
			}
			slices.Sort(cycle)
			fmt.Fprintf(w, "nats stream report + consumer report x %d\t1\t%s\t%s\t%s\t%.0fx the sample cycle\t\n",
				*streams, ms(d), ms(d), ms(d), float64(d)/float64(cycle[len(cycle)/2]))
		}
	}
	return w.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// populate creates the streams and consumers with bounded concurrency.
func populate(ctx context.Context, nc *nats.Conn, streams, consumers, messages int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				name := fmt.Sprintf("BENCH_%04d", i)
				s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{fmt.Sprintf("bench.%d.>", i)}, MaxMsgs: 100_000})
				if err != nil {
					errs <- fmt.Errorf("stream %s: %w", name, err)
					return
				}
				for m := range messages {
					if _, err := js.Publish(ctx, fmt.Sprintf("bench.%d.m", i), fmt.Appendf(nil, "message %d", m)); err != nil {
						errs <- err
						return
					}
				}
				for c := range consumers {
					if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: fmt.Sprintf("c%02d", c), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
						errs <- fmt.Errorf("consumer of %s: %w", name, err)
						return
					}
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range streams {
			select {
			case jobs <- i:
			case err := <-errs:
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// natsReports times what an operator runs by hand for the same picture:
// one stream report and one consumer report per stream.
func natsReports(bin, url string, streams int) (time.Duration, error) {
	t0 := time.Now()
	cmd := exec.Command(bin, "--server", url, "stream", "report")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("nats stream report: %v: %s", err, out)
	}
	for i := range streams {
		cmd := exec.Command(bin, "--server", url, "consumer", "report", fmt.Sprintf("BENCH_%04d", i))
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("nats consumer report: %v: %s", err, out)
		}
	}
	return time.Since(t0), nil
}
