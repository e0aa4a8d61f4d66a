package service

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSlotsTakeWaitsForWhatItWantsAndNeverMore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSlots(4)
	n, ok := s.take(ctx, 2, 3)
	require.True(t, ok)
	require.Equal(t, 3, n, "as many as are free, up to the limit")
	n, ok = s.take(ctx, 1, 4)
	require.True(t, ok)
	require.Equal(t, 1, n)
	require.Equal(t, 4, s.inFlight())

	got := make(chan int)
	go func() {
		n, _ := s.take(ctx, 2, 4)
		got <- n
	}()
	s.give(1)
	s.give(1)
	require.Equal(t, 2, <-got, "woken once two were free, not at the first")
	require.Equal(t, 4, s.inFlight())

	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, ok := s.take(cctx, 1, 4)
		got <- map[bool]int{true: 1, false: 0}[ok]
	}()
	cancel()
	require.Equal(t, 0, <-got, "none free: it gives up when ctx ends")
	require.Equal(t, 4, s.inFlight(), "and takes nothing")
}

func TestSlotsHeldNeverExceedTheSizeWhileGivenBackConcurrently(t *testing.T) {
	t.Parallel()
	const size, rounds = 8, 2000
	s := newSlots(size)
	back := make(chan int, size)
	var givers sync.WaitGroup
	for range 4 {
		givers.Go(func() {
			for n := range back {
				for range n {
					s.give(1)
				}
			}
		})
	}
	taken := 0
	for taken < rounds {
		n, ok := s.take(context.Background(), size/2, size)
		require.True(t, ok)
		require.LessOrEqual(t, s.inFlight(), size)
		require.GreaterOrEqual(t, n, size/2)
		taken += n
		back <- n
	}
	close(back)
	givers.Wait()
	require.Zero(t, s.inFlight(), "every slot came back")
}
