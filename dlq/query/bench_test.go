package query

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkQueries1M measures the dead-letter list, search and detail over
// an index of 1,000,000 dead letters (rows written straight into SQLite;
// building the file takes a while). The detail reads headers and payload
// from a DLQ stream holding the first 10,000 of them. The targets:
// a single filter <= 50 ms, full-text search <= 150 ms, the detail <= 10 ms.
//
//	go test -tags sqlite_fts5 -run xxx -bench Queries1M -benchtime 20x ./dlq/query
func BenchmarkQueries1M(b *testing.B) {
	const n = 1_000_000
	const inStream = 10_000
	ctx := context.Background()
	srv := natstest.RunServer(b)
	js, err := jetstream.New(natstest.Connect(b, srv))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true}); err != nil {
		b.Fatal(err)
	}
	db, err := store.OpenFile(ctx, filepath.Join(b.TempDir(), "jetwatch.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	base := time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)
	streams := []string{"ORDERS", "PAYMENTS", "AUDIT", "TELEMETRY", "SHIPPING", "BILLING", "USERS", "SEARCH"}
	consumers := []string{"billing", "shipping", "archiver", "decoder", "indexer"}
	reasons := []string{dlq.ReasonMaxDeliver, dlq.ReasonMaxDeliver, dlq.ReasonTerminated, dlq.ReasonError}
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	for start := 0; start < n; start += 10_000 {
		tx, err := db.SQLForTests().BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		ins, _ := tx.PrepareContext(ctx, `INSERT INTO dead_letters (id, dlq_subject, stream, consumer, subject, stream_seq,
			reason, error, service, deliveries, failed_at, indexed_at, status, payload_available, unavailable_why, size,
			fingerprint, problems) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', 5, ?, 0, ?, 1, '', 256, ?, '[]')`)
		fts, _ := tx.PrepareContext(ctx, `INSERT INTO dead_letters_fts (rowid, subject, error, payload) VALUES (?, ?, ?, ?)`)
		for i := start; i < start+10_000; i++ {
			id := i + 1
			stream := streams[i%len(streams)]
			subject := fmt.Sprintf("%s.%s.%s", stream, []string{"eu", "us", "ap"}[i%3], []string{"created", "paid", "shipped", "cancelled"}[i%4])
			errText := fmt.Sprintf("timeout after %d ms calling %s", i%997, words[i%len(words)])
			if i%1000 == 0 {
				errText = fmt.Sprintf("schema mismatch: unknown field zulu%d", i)
			}
			payload := fmt.Sprintf(`{"id":"%d","customer":"%s","items":["%s","%s"],"note":"%s %s %s"}`,
				id, words[i%7], words[i%10], words[(i/10)%10], words[(i/100)%10], words[(i/3)%10], words[(i/7)%10])
			status := store.StatusPending
			if i%5 == 0 {
				status = store.StatusRedelivered
			}
			failed := base.Add(time.Duration(i) * 2592 * time.Millisecond) // 30 days over 1M
			dlqSubject := dlq.Subject(stream, consumers[i%len(consumers)])
			if _, err := ins.ExecContext(ctx, id, dlqSubject, stream, consumers[i%len(consumers)], subject, i, reasons[i%len(reasons)],
				errText, failed.UnixMilli(), status, index.Fingerprint(errText)); err != nil {
				b.Fatal(err)
			}
			if id <= inStream {
				m := nats.NewMsg(dlqSubject)
				m.Data = []byte(payload)
				dlq.Envelope{Stream: stream, Subject: subject, Sequence: uint64(i), Consumer: consumers[i%len(consumers)],
					Reason: reasons[i%len(reasons)], Error: errText, FailedAt: failed}.Apply(m.Header)
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := fts.ExecContext(ctx, id, subject, errText, payload); err != nil {
				b.Fatal(err)
			}
		}
		ins.Close()
		fts.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	q := New(db, js, "DLQ")
	mid := base.Add(15 * 24 * time.Hour)
	cases := []struct {
		name string
		f    store.DeadLetterFilter
	}{
		{"none", store.DeadLetterFilter{}},
		{"stream", store.DeadLetterFilter{Stream: "PAYMENTS"}},
		{"consumer", store.DeadLetterFilter{Consumer: "archiver"}},
		{"subject-wildcard", store.DeadLetterFilter{Subject: "ORDERS.*.created"}},
		{"subject-wildcard-none", store.DeadLetterFilter{Subject: "ORDERS.*.paid"}},
		{"subject-wildcard-leading", store.DeadLetterFilter{Subject: "*.eu.paid"}},
		{"reason-rare", store.DeadLetterFilter{Reason: dlq.ReasonError}},
		{"status", store.DeadLetterFilter{Status: store.StatusRedelivered}},
		{"status-common", store.DeadLetterFilter{Status: store.StatusPending}},
		{"time-range", store.DeadLetterFilter{Since: mid, Until: mid.Add(time.Hour)}},
		{"search-common", store.DeadLetterFilter{Q: "foxtrot"}},
		{"search-rare", store.DeadLetterFilter{Q: "zulu500000"}},
		{"search-and-stream", store.DeadLetterFilter{Q: "hotel", Stream: "AUDIT"}},
	}
	for _, c := range cases {
		b.Run("list/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := q.List(ctx, c.f, 50, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("count/stream", func(b *testing.B) {
		for b.Loop() {
			if _, err := q.Count(ctx, store.DeadLetterFilter{Stream: "PAYMENTS"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		f    store.DeadLetterFilter
	}{{"pending", store.DeadLetterFilter{Status: store.StatusPending}}, {"search-common", store.DeadLetterFilter{Q: "foxtrot"}}, {"subject-wildcard", store.DeadLetterFilter{Subject: "ORDERS.*.created"}}} {
		b.Run("count-upto-10000/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := q.CountUpTo(ctx, c.f, 10000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("rss-after-queries", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(rssMiB(b), "MiB-rss")
	})
	b.Run("detail", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			d, err := q.Get(ctx, uint64(1+(i*7919)%inStream))
			if err != nil {
				b.Fatal(err)
			}
			if len(d.Payload) == 0 {
				b.Fatalf("dead letter %d came without its payload: %s", d.ID, d.UnavailableWhy)
			}
		}
	})
}

// rssMiB is this process's resident set size, from /proc.
func rssMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
