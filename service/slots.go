package service

import (
	"context"
	"sync/atomic"
)

// slots counts the messages in flight, up to the runner's Concurrency: the
// fetch loop takes slots for a pull request, and each message gives its
// own back once settled. A count, not a channel of tokens: the loop waits
// for half the slots, and with a channel every message settled woke it.
type slots struct {
	size int64
	held atomic.Int64
	// mark is the most slots held that wakes the waiting fetch loop; -1
	// while it is not waiting.
	mark  atomic.Int64
	freed chan struct{} // wakes the loop; holds one wake-up at most
}

func newSlots(n int) *slots {
	s := &slots{size: int64(n), freed: make(chan struct{}, 1)}
	s.mark.Store(-1)
	return s
}

// give gives n slots back.
func (s *slots) give(n int) {
	if s.held.Add(-int64(n)) <= s.mark.Load() {
		select {
		case s.freed <- struct{}{}:
		default: // a wake-up is on its way already
		}
	}
}

// inFlight is how many slots are held.
func (s *slots) inFlight() int { return int(s.held.Load()) }

// take waits until at least want slots are free, then takes as many as
// are free, up to limit. ok is false once ctx ends. Only the fetch loop
// takes slots: while it waits, free slots only grow.
func (s *slots) take(ctx context.Context, want, limit int) (n int, ok bool) {
	for {
		if free := s.size - s.held.Load(); free >= int64(want) {
			n := min(free, int64(limit))
			s.held.Add(n)
			return int(n), true
		}
		s.mark.Store(s.size - int64(want))
		// Looked at again after the mark is set: a slot given back before
		// it was set did not wake anyone.
		if s.size-s.held.Load() < int64(want) {
			select {
			case <-s.freed:
			case <-ctx.Done():
				s.mark.Store(-1)
				return 0, false
			}
		}
		s.mark.Store(-1)
	}
}
