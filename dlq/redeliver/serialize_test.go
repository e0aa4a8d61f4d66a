package redeliver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// replica is a second jetwatch on the same NATS: its own index file, its
// own index reader and redeliverer.
func (b *bundle) replica(t *testing.T) (*Redeliverer, *query.Queries, *index.Index) {
	t.Helper()
	db, err := store.OpenFile(b.ctx, filepath.Join(t.TempDir(), "replica.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	nc := b.r.js.Conn()
	ix, err := index.New(nc, db, index.Config{})
	require.NoError(t, err)
	require.NoError(t, ix.CatchUp(b.ctx))
	r, err := New(nc, db, Config{})
	require.NoError(t, err)
	return r, query.New(db, b.js, ""), ix
}

// Discard on one replica racing redeliver on the other, on 20 dead
// letters: for each exactly one wins and the loser sends nothing, and
// both replicas end with the status of what was sent.
func TestRacingReplicasAgreeWithWhatWasSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 20
	b.manyDeadLetters(t, n)
	other, otherQ, otherIx := b.replica(t)

	type outcome struct{ discard, redeliver error }
	outcomes := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		id := uint64(i + 1)
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			if i%2 == 1 {
				// As much work before acting as a redelivery does (its
				// message and its target), so both orders happen.
				if _, err := b.q.Get(b.ctx, id); err != nil {
					outcomes[i].discard = err
					return
				}
				if _, err := b.js.StreamNameBySubject(b.ctx, "orders.created"); err != nil {
					outcomes[i].discard = err
					return
				}
			}
			_, outcomes[i].discard = b.r.Discard(b.ctx, id, "ann", "not needed")
		})
		wg.Go(func() {
			<-start
			_, outcomes[i].redeliver = other.Redeliver(b.ctx, Request{ID: id, Actor: "bob"})
		})
		close(start)
	}
	wg.Wait()

	// What reached ORDERS, by dead letter.
	sent := map[uint64]bool{}
	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(b.ctx, seq)
		require.NoError(t, err)
		var id uint64
		_, err = fmt.Sscanf(m.Header.Get(jetstream.MsgIDHeader), "jetwatch-redeliver:%d:", &id)
		require.NoError(t, err)
		require.False(t, sent[id], "dead letter %d sent twice", id)
		sent[id] = true
	}
	discards, redeliveries := 0, 0
	for i, o := range outcomes {
		id := uint64(i + 1)
		require.True(t, (o.discard == nil) != (o.redeliver == nil), "dead letter %d: discard %v, redeliver %v: exactly one wins", id, o.discard, o.redeliver)
		if o.redeliver == nil {
			redeliveries++
			require.True(t, sent[id], "dead letter %d: redelivery won but nothing was sent", id)
			require.True(t, errors.Is(o.discard, ErrAlreadyRedelivered) || errors.Is(o.discard, ErrInProgress), "%d: %v", id, o.discard)
		} else {
			discards++
			require.False(t, sent[id], "dead letter %d: discard won but it was sent", id)
			require.True(t, errors.Is(o.redeliver, ErrAlreadyDiscarded), "%d: %v", id, o.redeliver)
		}
	}
	t.Logf("%d discarded, %d redelivered", discards, redeliveries)

	// Each replica's index reads the actions stream; both end where
	// JetStream does.
	ctx, cancel := context.WithCancel(b.ctx)
	t.Cleanup(cancel)
	require.NoError(t, b.ix.Start(ctx))
	t.Cleanup(b.ix.Stop)
	require.NoError(t, otherIx.Start(ctx))
	t.Cleanup(otherIx.Stop)
	for _, q := range []*query.Queries{b.q, otherQ} {
		natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			for i := range n {
				id := uint64(i + 1)
				d, err := q.Get(b.ctx, id)
				if err != nil {
					return err
				}
				want := store.StatusDiscarded
				if sent[id] {
					want = store.StatusRedelivered
				}
				if d.Status != want {
					return errors.New("dead letter " + strconv.FormatUint(id, 10) + " is " + d.Status + ", want " + want)
				}
			}
			return nil
		})
	}
}

// A redelivery interrupted between its start and its end (a crash) shows
// as under way, refuses a discard, and is finished by the next redelivery
// once stale, under the same message id: sent once.
func TestInterruptedRedeliveryIsFinishedWithoutSendingTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, `{"order":"ord-1"}`, false)
	clock := &testClock{t: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	r, err := New(b.r.js.Conn(), b.db, Config{StaleAfter: time.Minute, Now: clock.Now})
	require.NoError(t, err)

	// The crash: the start is recorded and the message sent, nothing more.
	start := dlq.Action{DeadLetter: id, Action: dlq.ActionRedeliverStart, Actor: "ann", At: clock.Now(), Attempt: 1, Subject: "orders.created"}
	_, err = r.claim(b.ctx, start)
	require.NoError(t, err)
	d, err := b.q.Get(b.ctx, id)
	require.NoError(t, err)
	msg, err := redelivery(d, Request{ID: id}, 1)
	require.NoError(t, err)
	_, err = b.js.PublishMsg(b.ctx, msg)
	require.NoError(t, err)
	require.Equal(t, store.StatusRedelivering, d.Status)

	_, err = r.Redeliver(b.ctx, Request{ID: id, Actor: "bob"})
	require.ErrorIs(t, err, ErrInProgress, "a fresh start is another operator's redelivery under way")
	clock.Advance(59 * time.Second)
	_, err = r.Discard(b.ctx, id, "bob", "")
	require.ErrorIs(t, err, ErrInProgress, "not stale yet: still under way")
	clock.Advance(2 * time.Second)
	_, err = r.Discard(b.ctx, id, "bob", "")
	require.ErrorIs(t, err, ErrInterrupted, "stale: it may have been sent, so it cannot be discarded")
	_, err = r.Redeliver(b.ctx, Request{ID: id, Actor: "bob"})
	require.ErrorIs(t, err, ErrAlreadyRedelivered, "the interrupted send is found and recorded")
	require.Equal(t, uint64(1), b.ordersCount(t), "sent once")
	d, err = b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusRedelivered, d.Status)
	hist, err := b.q.History(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, dlq.ActionRedeliver, hist[len(hist)-1].Action)
	require.True(t, hist[len(hist)-1].Duplicate)
}

// An action recorded in JetStream is the action, even when the local
// index cannot take it: the answer is success, and the index catches up
// from the stream.
func TestRecordedActionSucceedsWhenTheIndexCannotWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, `{"order":"ord-1"}`, false)
	// The index is read-only from here on, as on a full disk.
	_, err := b.db.SQLForTests().ExecContext(b.ctx, `CREATE TRIGGER no_actions BEFORE INSERT ON dead_letter_actions
		BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`)
	require.NoError(t, err)
	a, err := b.r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.NoError(t, err)
	require.Equal(t, "ORDERS", a.AckStream)
	require.Equal(t, uint64(1), b.ordersCount(t))

	// Once the disk has room, the stream's records bring the index up to date.
	_, err = b.db.SQLForTests().ExecContext(b.ctx, `DROP TRIGGER no_actions`)
	require.NoError(t, err)
	require.NoError(t, b.ix.CatchUp(b.ctx))
	d, err := b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusRedelivered, d.Status)
}

// testClock is a clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
