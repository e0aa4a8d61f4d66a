package collector

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkLagCycle is the lag judgement's share of one sample cycle at
// 10,000 streams × 10 consumers, windows full: every consumer judged, every
// stream checked for deleted consumers; all keeping up, or all falling
// behind (each with its reason written). It reports the time per consumer
// and the memory the windows hold per consumer.
//
//	go test -tags sqlite_fts5 -run '^$' -bench BenchmarkLagCycle -benchmem ./collector/
func BenchmarkLagCycle(b *testing.B) {
	b.Run("keeping up", func(b *testing.B) { benchmarkLagCycle(b, 0, store.LagOK) })
	b.Run("falling behind", func(b *testing.B) { benchmarkLagCycle(b, 8, store.LagFallingBehind) })
}

func benchmarkLagCycle(b *testing.B, growth int, want string) {
	const streams, perStream = 10_000, 10
	consumers := make([]store.Consumer, 0, streams*perStream)
	for s := range streams {
		for c := range perStream {
			consumers = append(consumers, store.Consumer{Stream: fmt.Sprintf("STREAM_%05d", s), Name: fmt.Sprintf("consumer-%02d", c),
				AckPolicy: "explicit", NumWaiting: 1, Created: time.Unix(0, 0)})
		}
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t := newLagTracker(10*time.Second, 5*time.Minute, 15*time.Minute)
	cycle := func(i int) {
		at := now.Add(time.Duration(i) * 10 * time.Second)
		t.begin(nil)
		for j := range consumers {
			c := &consumers[j]
			c.NumPending, c.Delivered.ConsumerSeq, c.AckFloor.ConsumerSeq = uint64(100+i*growth), uint64(i*12), uint64(i*12)
			t.judge(c, true, at, at)
		}
		for s := range streams {
			if _, err := t.deleted(consumers[s*perStream].Stream, true, at, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range lagWindowSamples {
		cycle(i)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc-before.HeapAlloc) / float64(len(consumers))
	if got := consumers[0].LagState; got != want {
		b.Fatalf("lag state %s, want %s", got, want)
	}
	b.ResetTimer()
	for i := range b.N {
		cycle(lagWindowSamples + i)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(consumers)), "ns/consumer")
	b.ReportMetric(held, "held-B/consumer")
}
