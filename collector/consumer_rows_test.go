package collector

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jetwatch/jetwatch/store"
)

// Rows added by concurrent readers, in whatever order they finish, come
// out in the order asked for, each stream's together and in its order.
func TestConsumerRowsArrangeInTheCycleOrder(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		nStreams := 1 + rng.IntN(40)
		rows := newConsumerRows(rng.IntN(50)) // too small at times: it grows
		want := map[string][]store.Consumer{}
		var names []string
		for i := range nStreams {
			name := fmt.Sprintf("S%02d", i)
			names = append(names, name)
			for j := range rng.IntN(6) {
				want[name] = append(want[name], store.Consumer{Stream: name, Name: fmt.Sprintf("c%d", j), NumPending: uint64(i*100 + j)})
			}
		}
		var wg sync.WaitGroup
		for _, i := range rng.Perm(nStreams) {
			wg.Go(func() { rows.add(names[i], want[names[i]]) })
		}
		wg.Wait()
		// Some streams' rows are appended afterwards, as SampleOnce does
		// for those not built as read.
		extra := store.Consumer{Stream: "ZZ", Name: "late"}
		lo := len(rows.rows)
		rows.rows = append(rows.rows, extra)
		var order []rowSpan
		perm := rng.Perm(nStreams)
		var expect []store.Consumer
		for k, i := range perm {
			sp, ok := rows.built(names[i])
			if !ok {
				t.Fatalf("seed %d: stream %s has no span", seed, names[i])
			}
			order = append(order, sp)
			expect = append(expect, want[names[i]]...)
			if k == nStreams/2 {
				order = append(order, rowSpan{lo, lo + 1})
				expect = append(expect, extra)
			}
		}
		got := rows.arrange(order)
		if len(got) != len(expect) {
			t.Fatalf("seed %d: %d rows, want %d", seed, len(got), len(expect))
		}
		for i := range expect {
			if got[i].Stream != expect[i].Stream || got[i].Name != expect[i].Name || got[i].NumPending != expect[i].NumPending {
				t.Fatalf("seed %d: row %d is %s/%s, want %s/%s", seed, i, got[i].Stream, got[i].Name, expect[i].Stream, expect[i].Name)
			}
		}
	}
}

// A row in no span is kept, after the others.
func TestConsumerRowsArrangeKeepsRowsInNoSpan(t *testing.T) {
	rows := newConsumerRows(0)
	rows.add("A", []store.Consumer{{Stream: "A", Name: "a"}})
	rows.add("B", []store.Consumer{{Stream: "B", Name: "b"}})
	sp, _ := rows.built("B")
	got := rows.arrange([]rowSpan{sp})
	if len(got) != 2 || got[0].Stream != "B" || got[1].Stream != "A" {
		t.Fatalf("got %+v, want B then A", got)
	}
}
