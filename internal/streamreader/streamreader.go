// Package streamreader reads a JetStream stream in order from a sequence,
// in batches, for the indexes that keep their position next to their rows
// (dead letters, the advisory timeline). Reading the next batch overlaps
// with handling the last one.
package streamreader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchWait is how long a partial batch waits for more messages.
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
func RunPrepared[T any](ctx context.Context, js jetstream.JetStream, stream string, startSeq uint64, batch int,
	prepare func([]jetstream.Msg) (T, error), handle func(ctx context.Context, batch T) (stop bool, err error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   max(startSeq, 1),
	})
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * batch))
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer it.Stop()
	batches := make(chan T, 1)
	readErr := make(chan error, 1)
	go gather(ctx, it, batch, prepare, batches, readErr)
	for b := range batches {
		stop, err := handle(ctx, b)
		if err != nil || stop {
			return err
		}
	}
	select {
	case err := <-readErr:
		return fmt.Errorf("read stream %s: %w", stream, err)
	default:
		return ctx.Err()
	}
}

// gather cuts the message stream into batches, sending a partial batch when
// nothing arrives for batchWait and an empty one now and then while idle.
func gather[T any](ctx context.Context, it jetstream.MessagesContext, size int, prepare func([]jetstream.Msg) (T, error),
	out chan<- T, readErr chan<- error) {
	defer close(out)
	var batch []jetstream.Msg
	idle := 0
	send := func() bool {
		prepared, err := prepare(batch)
		if err != nil {
			readErr <- err
			return false
		}
		select {
		case out <- prepared:
			batch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		m, err := it.Next(jetstream.NextMaxWait(batchWait))
		switch {
		case err == nil:
			batch = append(batch, m)
			idle = 0
			if len(batch) < size {
				continue
			}
		case errors.Is(err, nats.ErrTimeout):
			if len(batch) == 0 {
				if idle++; idle%idleEvery != 0 {
					continue
				}
			}
		default:
			if len(batch) > 0 && !send() {
				return
			}
			if ctx.Err() == nil {
				readErr <- err
			}
			return
		}
		if !send() {
			return
		}
	}
}
