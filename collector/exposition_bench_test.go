//go:build unix

package collector

import (
	"io"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkExposition measures /metrics at 10,000 streams x 10 consumers
// with the exporter's full label set: building a cycle's series (in the
// cycle), writing the text (a plain scrape), compressing it (once per
// cycle, ahead of the scrapes while something scrapes with gzip) and a
// gzipped scrape of the compressed form.
//
//	go test -tags sqlite_fts5 -run '^$' -bench Exposition -benchmem ./collector
func BenchmarkExposition(b *testing.B) {
	c, servers := syntheticCycle(10_000, 10)
	id := identity{Account: "APP", AccountID: "APP"}
	conn := connectedServer{name: "nats-0", id: servers[0].ID}
	e := newExposition(c, nil, servers, servers, id, conn)
	var size countingWriter
	if err := e.writeText(&size); err != nil {
		b.Fatal(err)
	}
	series := 0
	for _, f := range e.families {
		for i := range f.values {
			if f.absent == nil || !f.absent[i] {
				series++
			}
		}
	}

	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			newExposition(c, nil, servers, servers, id, conn)
		}
		cpu.report(b)
		b.ReportMetric(float64(series), "series")
		b.ReportMetric(retainedMB(func() any { return newExposition(c, nil, servers, servers, id, conn) }), "retained-MB")
	})
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		cpu := startCPU()
		for b.Loop() {
			if err := e.writeText(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
	b.Run("compress", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		var zipped countingWriter
		cpu := startCPU()
		for b.Loop() {
			fresh := &exposition{families: e.families}
			zipped = 0
			if err := fresh.gzipped().writeGzip(&zipped, nil); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
		b.ReportMetric(float64(zipped), "gzip-bytes")
		b.ReportMetric(retainedMB(func() any {
			fresh := &exposition{families: e.families}
			return fresh.gzipped()
		}), "retained-MB")
	})
	b.Run("scrape-gzip", func(b *testing.B) {
		b.ReportAllocs()
		body := e.gzipped()
		extra := make([]byte, 20_000) // about what the registry adds
		cpu := startCPU()
		for b.Loop() {
			if err := body.writeGzip(io.Discard, extra); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
}

// cpuClock reports the process's CPU time per op: on a machine shared with
// other work, wall time says how busy the machine was as much as how much
// work was done.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// retainedMB is the heap that what build returns keeps alive.
func retainedMB(build func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1e6
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
