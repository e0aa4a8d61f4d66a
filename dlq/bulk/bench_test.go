package bulk

import (
	"math"
	"testing"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkBulk measures a bulk redelivery job end to end, unthrottled and
// throttled, on a real server and index. The issue asks for 10,000 a second
// unthrottled and the set rate within 5 % throttled.
//
//	go test -tags sqlite_fts5 -run xxx -bench Bulk -benchtime 1x ./dlq
func BenchmarkBulk(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
		rate float64
	}{{"unthrottled", 5000, 0}, {"throttled-500", 3000, 500}} {
		b.Run(c.name, func(b *testing.B) {
			d := setupDesk(b)
			d.manyDeadLetters(b, c.n)
			r := NewRunner(d.js, d.q, d.r, Config{})
			defer r.Stop()
			if err := r.Start(d.ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			job, err := r.Create(d.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, RatePerSec: c.rate, Actor: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			for {
				j, err := r.Get(d.ctx, job.ID)
				if err != nil {
					b.Fatal(err)
				}
				if j.State == JobDone {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			got := float64(c.n) / elapsed.Seconds()
			b.ReportMetric(got, "msgs/s")
			if c.rate > 0 {
				b.ReportMetric(100*math.Abs(got-c.rate)/c.rate, "%off-rate")
			}
			if sent := d.ordersCount(b); sent != uint64(c.n) {
				b.Fatalf("sent %d, want %d", sent, c.n)
			}
		})
	}
}
