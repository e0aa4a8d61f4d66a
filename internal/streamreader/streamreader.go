// Package streamreader reads a JetStream stream in order from a sequence,
// in batches, for the indexes that keep their position next to their rows
// (dead letters, the advisory timeline). Reading the next batch overlaps
// with handling the last one. A Follower keeps an index following its
// stream: from the stored position, restarting after failures with one
// backoff, for as long as its context lasts.
package streamreader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchWait is how often a partial batch is sent: the longest a message
// waits in a quiet stream.
const batchWait = 50 * time.Millisecond

// idleEvery is how many quiet waits pass between empty batches, which let
// the handler look at its position while nothing arrives.
const idleEvery = 10

// Handler stores a batch (possibly empty, when idle) and says whether to stop.
type Handler func(ctx context.Context, batch []jetstream.Msg) (stop bool, err error)

// Run reads stream from startSeq with an ordered consumer in batches of at
// most batch messages, calling handle for each, until handle says stop,
// handle fails, reading fails or ctx ends.
func Run(ctx context.Context, js jetstream.JetStream, stream string, startSeq uint64, batch int, handle Handler) error {
	return RunPrepared(ctx, js, stream, startSeq, batch,
		func(b []jetstream.Msg) ([]jetstream.Msg, error) { return b, nil }, handle)
}

// RunPrepared is Run with a prepare step that turns each batch into what
// handle stores. It runs on the reading goroutine, so preparing the next
// batch overlaps with handling the last one. A prepare error ends the run.
//
// Messages arrive through Consume's callback into a queue of at most two
// batches: measured, that costs about 2 µs less per message than pulling
// each one with Next and a wait.
func RunPrepared[T any](ctx context.Context, js jetstream.JetStream, stream string, startSeq uint64, batch int,
	prepare func([]jetstream.Msg) (T, error), handle func(ctx context.Context, batch T) (stop bool, err error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Bounded whatever ctx's deadline: a request sent while the server
	// restarts may never be answered, and the run would wait for it.
	cctx, ccancel := context.WithTimeout(ctx, createTimeout)
	prefix := namePrefix()
	cons, err := js.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{
		NamePrefix:        prefix,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(startSeq, 1),
		InactiveThreshold: InactiveThreshold,
	})
	ccancel()
	if err != nil {
		// The server may have made the consumer though its answer never
		// came (ctx ended meanwhile, or it was lost): its first name is
		// known.
		deleteConsumer(js, stream, prefix+"_1")
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	// Stopping the ordered consumer leaves its server-side consumer to
	// the inactivity threshold; a reader restarted after an error would
	// leave one behind each time, shown as stalled on jetwatch's streams.
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			deleteConsumer(js, stream, info.Name)
		}
	}()
	q := newQueue(batch)
	cc, err := cons.Consume(func(m jetstream.Msg) { q.push(ctx, m) },
		jetstream.PullMaxMessages(2*batch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !recovered(err) {
				q.fail(err)
			}
		}))
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	batches := make(chan T, 1)
	go gather(ctx, q, prepare, batches)
	// Cancelled first: a delivery waiting for room in the queue returns.
	// Nothing of the run outlives it: gather has ended when batches is
	// drained, and the deliveries once Consume says it is closed (waited
	// for within a bound: that is up to nats.go's teardown).
	defer func() {
		cancel()
		cc.Stop()
		for range batches {
		}
		select {
		case <-cc.Closed():
		case <-time.After(closeWait):
		}
	}()
	for b := range batches {
		stop, err := handle(ctx, b)
		if err != nil || stop {
			return err
		}
	}
	if err := q.err(); err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	return ctx.Err()
}

// createTimeout bounds the creation of a run's consumer.
const createTimeout = 5 * time.Second

// closeWait bounds the wait for a stopped run's deliveries to end.
const closeWait = 2 * time.Second

// InactiveThreshold is how long the server keeps a reader's consumer that
// nobody reads, when jetwatch could not delete it (it died, or NATS was
// away when it stopped).
const InactiveThreshold = 30 * time.Second

// deleteConsumer deletes the reader's server-side consumer name, if NATS
// can be asked now.
func deleteConsumer(js jetstream.JetStream, stream, name string) {
	if !js.Conn().IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, stream, name) // else the inactivity threshold removes it
}

// namePrefix names a run's consumers (<prefix>_1, _2... as the ordered
// consumer makes new ones).
func namePrefix() string {
	var b [11]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	return hex.EncodeToString(b[:])
}

// recovered says whether the ordered consumer gets over err by itself
// (it makes a new server-side consumer from where it was). Anything else
// ends the run, and its caller starts a new one.
func recovered(err error) bool {
	return errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, nats.ErrNoResponders)
}

// queue holds messages delivered and not yet cut into batches: at most two
// batches, after which delivery waits (and the server holds the rest).
type queue struct {
	size  int
	mu    sync.Mutex
	msgs  []jetstream.Msg
	ready chan struct{} // a full batch is waiting
	room  chan struct{} // the queue has room again
	// failed closes when reading fails, with the first error in failure.
	failed  chan struct{}
	failure error
}

func newQueue(size int) *queue {
	return &queue{size: size, ready: make(chan struct{}, 1), room: make(chan struct{}, 1), failed: make(chan struct{})}
}

// push adds a delivered message, waiting while the queue is full.
func (q *queue) push(ctx context.Context, m jetstream.Msg) {
	q.mu.Lock()
	for len(q.msgs) >= 2*q.size {
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-q.failed:
			return
		case <-ctx.Done():
			return
		}
		q.mu.Lock()
	}
	q.msgs = append(q.msgs, m)
	full := len(q.msgs) >= q.size
	q.mu.Unlock()
	if full {
		poke(q.ready)
	}
}

// take removes and returns up to size messages, oldest first.
func (q *queue) take() []jetstream.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.msgs), q.size)
	if n == 0 {
		return nil
	}
	b := make([]jetstream.Msg, n)
	copy(b, q.msgs)
	rest := copy(q.msgs, q.msgs[n:])
	clear(q.msgs[rest:])
	q.msgs = q.msgs[:rest]
	poke(q.room)
	if rest >= q.size {
		poke(q.ready)
	}
	return b
}

func (q *queue) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failure == nil {
		q.failure = err
		close(q.failed)
	}
}

func (q *queue) err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failure
}

// poke signals c without waiting: one signal pending is enough.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// gather cuts the queue into batches: a full one as soon as it is there, a
// partial one every batchWait, and an empty one now and then while idle.
func gather[T any](ctx context.Context, q *queue, prepare func([]jetstream.Msg) (T, error), out chan<- T) {
	defer close(out)
	tick := time.NewTicker(batchWait)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.failed:
			return
		case <-q.ready:
		case <-tick.C:
		}
		batch := q.take()
		if len(batch) > 0 {
			idle = 0
		} else if idle++; idle%idleEvery != 0 {
			continue
		}
		prepared, err := prepare(batch)
		if err != nil {
			q.fail(err)
			return
		}
		select {
		case out <- prepared:
		case <-ctx.Done():
			return
		}
	}
}
