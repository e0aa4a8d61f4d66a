package collector

import (
	"sync"

	"github.com/jetwatch/jetwatch/store"
)

// consumerRows is where a cycle's consumer rows are built: each stream's
// as soon as its consumers are read, by the goroutine that read them,
// into one slice for the whole cycle. The infos then go at once, rather
// than 100,000 of them waiting for the cycle to be built (a quarter of a
// 10,000 x 10 cycle's peak memory), and no row is copied into the cycle
// again. Rows land in the order streams are read; arrange puts them in
// the cycle's order. Safe for concurrent use until arrange.
type consumerRows struct {
	// asRead says whether readers build rows as they read: only when
	// how many there will be is known from the last cycle (or the
	// stored one). Grown by appending instead, 100,000 rows were copied
	// over and over, and the garbage made the first cycle's peak higher
	// than holding the infos; the first cycle after a fresh start holds
	// them, and its rows are built once all are read and counted.
	asRead bool
	mu     sync.Mutex
	rows   []store.Consumer
	spans  map[string]rowSpan // by stream, for those built by readers
}

// rowSpan is where a stream's rows are in consumerRows.rows.
type rowSpan struct{ lo, hi int }

// newConsumerRows sizes the rows for about expect consumers, the last
// cycle's; with none expected, rows are not built as read.
func newConsumerRows(expect int) *consumerRows {
	r := &consumerRows{spans: map[string]rowSpan{}, asRead: expect > 0}
	r.size(expect)
	return r
}

// size makes room for about n rows. Called before any is added.
func (r *consumerRows) size(n int) {
	r.rows = make([]store.Consumer, 0, n+n/16+64)
}

// add keeps rows, a stream's consumers in name order.
func (r *consumerRows) add(stream string, rows []store.Consumer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lo := len(r.rows)
	r.rows = append(r.rows, rows...)
	r.spans[stream] = rowSpan{lo, len(r.rows)}
}

// built returns the span of a stream's rows added by a reader.
func (r *consumerRows) built(stream string) (rowSpan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp, ok := r.spans[stream]
	return sp, ok
}

// arrange moves the rows in place so that the spans come in order, each
// span's rows kept together and in their order; rows in no span (there
// should be none) go last. Each row is moved once, through one spare:
// copying them into a new slice would hold the cycle's rows twice.
func (r *consumerRows) arrange(order []rowSpan) []store.Consumer {
	rows := r.rows
	// dest[i] is where the row at i goes.
	dest := make([]int32, len(rows))
	placed := make([]bool, len(rows))
	next := 0
	for _, sp := range order {
		for i := sp.lo; i < sp.hi; i++ {
			if !placed[i] {
				dest[i], placed[i] = int32(next), true
				next++
			}
		}
	}
	for i := range rows {
		if !placed[i] {
			dest[i] = int32(next)
			next++
		}
	}
	// Follow each cycle of the permutation: the row at i goes to dest[i],
	// the one there to its own dest, until the cycle closes at i.
	for i := range rows {
		for int(dest[i]) != i {
			j := dest[i]
			rows[i], rows[j] = rows[j], rows[i]
			dest[i], dest[j] = dest[j], j
		}
	}
	return rows
}
