package collector

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkConsumerRows: what building a 10,000 x 10 cycle's rows into one
// slice costs (copying each stream's rows in, then arranging them).
func BenchmarkConsumerRows(b *testing.B) {
	const streams, per = 10000, 10
	at := time.Now()
	built := make([][]store.Consumer, streams)
	for i := range built {
		for j := range per {
			built[i] = append(built[i], store.Consumer{Stream: fmt.Sprintf("S%05d", i), Name: fmt.Sprintf("c%d", j),
				SampledAt: at, Health: store.Health{Level: store.HealthWarning, Reasons: []string{"falling behind"}}, LagState: store.LagOK})
		}
	}
	for _, size := range []int{0, streams * per} {
		b.Run(fmt.Sprintf("sized=%d", size), func(b *testing.B) {
			for b.Loop() {
				rows := newConsumerRows(size)
				jobs := make(chan int)
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for i := range jobs {
							rows.add(built[i][0].Stream, built[i])
						}
					})
				}
				for i := range built {
					jobs <- i
				}
				close(jobs)
				wg.Wait()
				order := make([]rowSpan, 0, streams)
				for i := range built {
					sp, _ := rows.built(built[i][0].Stream)
					order = append(order, sp)
				}
				if got := rows.arrange(order); len(got) != streams*per {
					b.Fatal(len(got))
				}
			}
		})
	}
}
