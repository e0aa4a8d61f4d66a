package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// createStreams creates n streams S000... with consumers c0... each.
func createStreams(t *testing.T, js jetstream.JetStream, n, consumers int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: fmt.Sprintf("S%03d", i), Subjects: []string{fmt.Sprintf("s.%d.>", i)}})
				if err != nil {
					errs <- err
					return
				}
				for c := range consumers {
					if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: fmt.Sprintf("c%d", c), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestSamplerCycleTooShortReadsEveryConsumerInTurn gives the sampler a
// cycle far too short to read every consumer: what a cycle had no time
// for is read first by the next, the usual way (not item by item, which
// takes a request per consumer and would make the next cycle slower
// still), so every consumer is read in turn and none is lost from the
// index.
func TestSamplerCycleTooShortReadsEveryConsumerInTurn(t *testing.T) {
	t.Parallel()
	full, b := setup(t)
	ctx := context.Background()
	const streams, consumers = 120, 3
	createStreams(t, b.js, streams, consumers)

	// With time enough, one cycle stores every stream and consumer.
	_, err := full.SampleOnce(ctx)
	require.NoError(t, err)
	start := time.Now()
	c, err := full.SampleOnce(ctx)
	require.NoError(t, err)
	fullCycle := time.Since(start)
	require.Len(t, c.Streams, streams)
	require.Len(t, c.Consumers, streams*consumers)
	for _, cs := range c.Consumers {
		require.Nil(t, cs.Unread, "%s/%s", cs.Stream, cs.Name)
	}
	stored, err := b.db.AllConsumers(ctx)
	require.NoError(t, err)
	require.Len(t, stored, streams*consumers)

	// A fraction of that time reads a fraction of the consumers per
	// cycle. How large a fraction depends on the machine's load: the
	// time is shortened until a first cycle leaves some unread.
	newShort := func(timeout time.Duration) (*Sampler, *store.DB) {
		db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "short.db"))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		s, err := NewSampler(b.nc, db, SamplerConfig{
			Interval: time.Second, CycleTimeout: timeout,
			Logger: testLogger(t), Now: b.clock.Now, JSZTimeout: 100 * time.Millisecond,
		})
		require.NoError(t, err)
		return s, db
	}
	read := map[string]bool{}
	var perCycle []int
	cycle := func(s *Sampler) {
		b.clock.Advance(time.Second)
		c, err := s.SampleOnce(ctx)
		require.NoError(t, err)
		n := 0
		for _, cs := range c.Consumers {
			if cs.Unread == nil {
				read[cs.Stream+"/"+cs.Name] = true
				n++
			}
		}
		perCycle = append(perCycle, n)
	}
	timeout := fullCycle / 8
	short, db := newShort(timeout)
	for cycle(short); perCycle[0] == streams*consumers; cycle(short) {
		require.Greater(t, timeout, time.Millisecond, "even a cycle of %s reads every consumer", timeout)
		timeout /= 2
		short, db = newShort(timeout)
		clear(read)
		perCycle = perCycle[:0]
	}
	// Bounded by time, not by a number of cycles: on a loaded machine a
	// cycle this short may read nothing new, and the test is about every
	// consumer being read in turn, not about how fast.
	deadline := time.Now().Add(2 * time.Minute)
	for len(read) < streams*consumers && time.Now().Before(deadline) {
		// Running out of time says nothing about NATS: at most what NATS
		// had RequestTimeout to answer and did not (a listing per request
		// in flight) is read item by item, and never the streams, which
		// would take a request per stream.
		require.False(t, short.byItem[""], "the streams are read item by item")
		var byItem []string
		for name, ok := range short.byItem {
			if ok {
				byItem = append(byItem, name)
			}
		}
		require.LessOrEqual(t, len(byItem), short.cfg.Concurrency, "running out of time made the next cycle read these item by item: %v", byItem)
		all, err := db.AllConsumers(ctx)
		require.NoError(t, err)
		indexed := map[string]bool{}
		for _, cs := range all {
			indexed[cs.Stream+"/"+cs.Name] = true
		}
		for name := range read {
			require.True(t, indexed[name], "%s was read once and is gone from the index", name)
		}
		cycle(short)
		if perCycle[len(perCycle)-1] == 0 && short.cfg.CycleTimeout < fullCycle/2 {
			// The machine got busier than when the time was chosen: a
			// cycle that reads nothing proves nothing about taking turns.
			short.cfg.CycleTimeout *= 2
		}
	}
	t.Logf("a cycle of %s (%s at the end) read every consumer (%s with time enough) in %d cycles, reading %v", timeout, short.cfg.CycleTimeout, fullCycle, len(perCycle), perCycle)
	require.Len(t, read, streams*consumers, "some consumers were never read")
}
