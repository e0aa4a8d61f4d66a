package dlq

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkIngest compares, in one run and over the same messages, the
// index's ingest of 256 B dead letters into SQLite with a plain JetStream
// consume+ack. The issue asks for at least half the plain rate.
//
//	go test -tags sqlite_fts5 -run xxx -bench Ingest -benchtime 1x ./dlq
func BenchmarkIngest(b *testing.B) {
	const n = 100_000
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	for i := range n {
		m := nats.NewMsg(Subject("ORDERS", "billing"))
		m.Data = payload
		Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: uint64(i + 1), Consumer: "billing", Deliveries: 5,
			Reason: ReasonMaxDeliver, Error: fmt.Sprintf("timeout after %d ms", i%1000), FailedAt: time.Now()}.Apply(m.Header)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()

	consumers := 0
	b.Run("plain-consume-ack", func(b *testing.B) {
		cpu := processCPU(b)
		for b.Loop() {
			consumers++
			cons, err := js.CreateConsumer(ctx, "DLQ", jetstream.ConsumerConfig{Name: fmt.Sprintf("plain%d", consumers), AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				b.Fatal(err)
			}
			var got atomic.Int64
			done := make(chan struct{})
			cc, err := cons.Consume(func(m jetstream.Msg) {
				m.Ack() //nolint:errcheck // benchmark
				if got.Add(1) == n {
					close(done)
				}
			}, jetstream.PullMaxMessages(1000))
			if err != nil {
				b.Fatal(err)
			}
			<-done
			cc.Stop()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(processCPU(b)-cpu)/1e3/float64(n*b.N), "cpu-µs/msg")
	})

	b.Run("index", func(b *testing.B) {
		db, err := store.OpenFile(ctx, filepath.Join(b.TempDir(), "jetwatch.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		ix, err := NewIndex(nc, db, IndexConfig{})
		if err != nil {
			b.Fatal(err)
		}
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			if err := ix.Reset(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := processCPU(b)
			if err := ix.CatchUp(ctx); err != nil {
				b.Fatal(err)
			}
			cpu += processCPU(b) - start
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(cpu)/1e3/float64(n*b.N), "cpu-µs/msg")
	})
}

// processCPU is the CPU time this process (NATS server included) has used,
// user and system: on a shared machine it says what a run cost even when
// other work slowed it down.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
