package journey

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/store"
)

// tapWait is how long a tapped message waits to be stored at most.
const tapWait = 100 * time.Millisecond

// tapQueue bounds the tapped messages waiting to be stored: past it, new
// ones are dropped (and counted) rather than held without limit.
const tapQueue = 20_000

// tapped is a message as the tap received it, and when.
type tapped struct {
	m  *nats.Msg
	at time.Time
}

// tap follows a WorkQueue stream live: a core subscription on its
// subjects sees each message as it is published. A work queue cannot be
// read by a second consumer without taking its messages from the first,
// so this is the only passive way in; what is published while jetwatch is
// away is not indexed, a message's sequence is not known (0), and its
// time is when jetwatch received it.
type tap struct {
	ix     *Index
	stream string
	subs   []*nats.Subscription
	msgs   chan tapped
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (ix *Index) newTap(ctx context.Context, stream string, subjects []string) (*tap, error) {
	if len(subjects) == 0 {
		return nil, fmt.Errorf("work-queue stream %s has no subjects to follow (it is sourced or mirrored)", stream)
	}
	nc := ix.js.Conn()
	ctx, cancel := context.WithCancel(ctx)
	t := &tap{ix: ix, stream: stream, msgs: make(chan tapped, tapQueue), cancel: cancel, done: make(chan struct{})}
	for _, subj := range subjects {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			select {
			case t.msgs <- tapped{m, time.Now()}:
			default:
				ix.tapDropped.Inc()
			}
		})
		if err != nil {
			for _, s := range t.subs {
				_ = s.Unsubscribe()
			}
			cancel()
			return nil, fmt.Errorf("subscribe to %s for journeys: %w", subj, err)
		}
		t.subs = append(t.subs, sub)
	}
	go t.run(ctx)
	return t, nil
}

// run stores what arrives, in batches, until ctx ends.
func (t *tap) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(tapWait)
	defer tick.Stop()
	var pending []tapped
	flush := func() {
		if len(pending) == 0 {
			return
		}
		var entries []store.JourneyEntry
		indexed := 0
		for _, p := range pending {
			n := len(entries)
			entries = t.ix.entries(entries, t.stream, 0, p.m.Subject, p.at, p.m.Header, p.m.Data)
			if len(entries) > n {
				indexed++
			}
		}
		// One retry after a failed write (a busy database); then the batch
		// is given up, and said so: a live tap cannot read it again.
		err := t.ix.db.InsertJourneyEntries(ctx, "", 0, entries)
		if err != nil && !errors.Is(err, context.Canceled) {
			err = t.ix.db.InsertJourneyEntries(ctx, "", 0, entries)
		}
		if err != nil {
			if ctx.Err() == nil {
				t.ix.logger.Warn("storing tapped journey messages failed; they are lost to journeys", "stream", t.stream,
					"messages", len(pending), "err", err)
			}
		} else if indexed > 0 {
			t.ix.indexed.WithLabelValues(t.stream).Add(float64(indexed))
		}
		pending = pending[:0]
	}
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-t.msgs:
			pending = append(pending, p)
			if len(pending) >= t.ix.cfg.Batch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// Stop ends the subscriptions and the storing. Safe to call twice.
func (t *tap) Stop() {
	t.once.Do(func() {
		for _, s := range t.subs {
			_ = s.Unsubscribe() // the connection may be closed already
		}
		t.cancel()
		if t.subs != nil {
			<-t.done
		}
	})
}
