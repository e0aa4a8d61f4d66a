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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

type bundle struct {
	js  jetstream.JetStream
	ix  *index.Index
	q   *query.Queries
	r   *Redeliverer
	db  *store.DB
	ctx context.Context
}

func setup(t testing.TB) *bundle {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "ORDERS", Subjects: []string{"orders.>"}},
		{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true}, // as jetwatch creates it
		{Name: "JETWATCH_DLQ_ACTIONS", Subjects: []string{dlq.ActionSubjectPrefix + ">"}},
	} {
		_, err := js.CreateStream(ctx, sc)
		require.NoError(t, err)
	}
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	ix, err := index.New(nc, db, index.Config{})
	require.NoError(t, err)
	r, err := New(nc, db, Config{})
	require.NoError(t, err)
	return &bundle{js: js, ix: ix, q: query.New(db, js, ""), r: r, db: db, ctx: ctx}
}

// deadLetter publishes one dead letter of orders.created and indexes it.
func (b *bundle) deadLetter(t *testing.T, payload string, unavailable bool) uint64 {
	t.Helper()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(payload)
	m.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	// Kept in the stored dead letter; it would make a redelivery to ORDERS
	// fail if it were not stripped.
	m.Header.Set("Nats-Expected-Stream", "DLQ")
	env := dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: 7, Consumer: "billing", Reason: dlq.ReasonMaxDeliver, FailedAt: time.Now()}
	if unavailable {
		env.PayloadUnavailable = "gone"
		m.Data = nil
	}
	env.Apply(m.Header)
	ack, err := b.js.PublishMsg(b.ctx, m)
	require.NoError(t, err)
	require.NoError(t, b.ix.CatchUp(b.ctx))
	return ack.Sequence
}

// manyDeadLetters publishes n dead letters of orders.created and indexes them.
func (b *bundle) manyDeadLetters(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
		m.Data = fmt.Appendf(nil, `{"n":%d}`, i)
		dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: uint64(i + 1), Consumer: "billing",
			Reason: dlq.ReasonMaxDeliver, Error: "timeout", FailedAt: time.Now()}.Apply(m.Header)
		_, err := b.js.PublishMsgAsync(m)
		require.NoError(t, err)
	}
	<-b.js.PublishAsyncComplete()
	require.NoError(t, b.ix.CatchUp(b.ctx))
}

func (b *bundle) ordersCount(t testing.TB) uint64 {
	t.Helper()
	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	return s.CachedInfo().State.Msgs
}

func TestRedeliverSendsOnceWithOriginalHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, `{"order":"ord-1"}`, false)

	a, err := b.r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.NoError(t, err)
	require.Equal(t, "ORDERS", a.AckStream)
	require.Equal(t, 1, a.Attempt)

	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	got, err := s.GetMsg(b.ctx, a.AckSeq)
	require.NoError(t, err)
	require.Equal(t, "orders.created", got.Subject)
	require.Equal(t, `{"order":"ord-1"}`, string(got.Data))
	require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", got.Header.Get("traceparent"))
	for k := range got.Header {
		require.False(t, dlq.IsEnvelopeHeader(k), "envelope header %s leaked", k)
	}
	require.Empty(t, got.Header.Get("Nats-Expected-Stream"))
	require.NotEmpty(t, got.Header.Get(jetstream.MsgIDHeader))

	d, err := b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusRedelivered, d.Status)
	hist, err := b.q.History(b.ctx, id)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	require.Equal(t, "ann", hist[0].Actor)

	// A second click sends nothing.
	_, err = b.r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.ErrorIs(t, err, ErrAlreadyRedelivered)
	require.Equal(t, uint64(1), b.ordersCount(t))

	// A rebuilt index keeps the status: actions are records in JetStream.
	require.NoError(t, b.ix.Reset(b.ctx))
	require.NoError(t, b.ix.CatchUp(b.ctx))
	d, err = b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusRedelivered, d.Status)
}

func TestConcurrentAndRetriedRedeliveriesSendOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, "x", false)

	// Two replicas' worth of clicks at once (separate redeliverers share
	// no lock).
	other, err := New(b.r.js.Conn(), b.db, Config{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*Redeliverer{b.r, other} {
		wg.Go(func() {
			_, errs[i] = r.Redeliver(b.ctx, Request{ID: id, Actor: "ops"})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			// The loser saw the winner's start, or its end.
			require.True(t, errors.Is(err, ErrAlreadyRedelivered) || errors.Is(err, ErrInProgress), "%v", err)
		}
	}
	require.Equal(t, 1, ok)
	require.Equal(t, uint64(1), b.ordersCount(t))

	// A crash after the send and before the record: the retry's send is
	// deduplicated by its message id.
	id2 := b.deadLetter(t, "y", false)
	m := nats.NewMsg("orders.created")
	m.Data = []byte("y")
	m.Header.Set(jetstream.MsgIDHeader, "jetwatch-redeliver:"+strconv.FormatUint(id2, 10)+":1")
	_, err = b.js.PublishMsg(b.ctx, m)
	require.NoError(t, err)
	_, err = b.r.Redeliver(b.ctx, Request{ID: id2, Actor: "ops"})
	require.ErrorIs(t, err, ErrAlreadyRedelivered)
	require.Equal(t, uint64(2), b.ordersCount(t))
	d, err := b.q.Get(b.ctx, id2)
	require.NoError(t, err)
	require.Equal(t, store.StatusRedelivered, d.Status, "the retry records what the crash left unrecorded")
}

func TestRedeliverRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, "x", false)
	_, err := b.r.Redeliver(b.ctx, Request{ID: id, Subject: "nowhere.at.all"})
	require.ErrorIs(t, err, ErrNoStream)
	require.Contains(t, err.Error(), "nowhere.at.all")
	d, err := b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, d.Status)

	for _, s := range []string{"orders.*", "orders.>", "a b", "orders..x"} {
		_, err = b.r.Redeliver(b.ctx, Request{ID: id, Subject: s})
		require.ErrorIs(t, err, ErrBadSubject, s)
	}
	_, err = b.r.Redeliver(b.ctx, Request{ID: id, Subject: "dlq.ORDERS.billing"})
	require.ErrorIs(t, err, ErrTargetRefused, "redelivering into the DLQ would only dead-letter it again")
	_, err = b.r.Redeliver(b.ctx, Request{ID: 4242})
	require.ErrorIs(t, err, store.ErrNotFound)

	gone := b.deadLetter(t, "", true)
	_, err = b.r.Redeliver(b.ctx, Request{ID: gone})
	require.ErrorIs(t, err, ErrPayloadUnavailable)
	a, err := b.r.Redeliver(b.ctx, Request{ID: gone, Payload: []byte(`{"rebuilt":true}`), Actor: "ann"})
	require.NoError(t, err)
	require.True(t, a.Edited)

	_, err = b.r.Discard(b.ctx, id, "ann", "duplicate order")
	require.NoError(t, err)
	_, err = b.r.Redeliver(b.ctx, Request{ID: id})
	require.True(t, errors.Is(err, ErrAlreadyDiscarded))
	d, err = b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusDiscarded, d.Status)
}

func TestDeadLetterReadsItsMessageFromTheDLQStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	kept := b.deadLetter(t, `{"order":"ord-1"}`, false)
	gone := b.deadLetter(t, `{"order":"ord-2"}`, false)

	d, err := b.q.Get(b.ctx, kept)
	require.NoError(t, err)
	require.True(t, d.PayloadAvailable)
	require.Equal(t, `{"order":"ord-1"}`, string(d.Payload))
	require.Equal(t, []string{"ORDERS"}, d.Headers["Dlq-Stream"])
	require.Equal(t, []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, d.Headers["traceparent"])

	// The stream's limits (or an operator) removed the message: the index
	// still lists the dead letter, marked and explained, and nothing is
	// redelivered from it.
	s, err := b.js.Stream(b.ctx, "DLQ")
	require.NoError(t, err)
	require.NoError(t, s.DeleteMsg(b.ctx, gone))
	d, err = b.q.Get(b.ctx, gone)
	require.NoError(t, err)
	require.False(t, d.PayloadAvailable)
	require.Nil(t, d.Payload)
	require.Contains(t, d.UnavailableWhy, "the DLQ stream no longer holds this dead letter")
	require.Equal(t, "orders.created", d.Subject, "what the index kept is still there")
	_, err = b.r.Redeliver(b.ctx, Request{ID: gone, Actor: "ann"})
	require.ErrorIs(t, err, ErrPayloadUnavailable)
	require.Zero(t, b.ordersCount(t))

	page, err := b.q.List(b.ctx, store.DeadLetterFilter{}, 10, "")
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
}

func TestDeadLetterReadFailsWhenNATSCannotBeAsked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, `{"order":"ord-1"}`, false)

	// A connection that went away: an error, not a dead letter shown as
	// gone while its message may well be there.
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	nc.Close()
	_, err = query.New(b.db, js, "DLQ").Get(b.ctx, id)
	require.ErrorContains(t, err, "reading its headers and payload from the DLQ stream")
	require.ErrorIs(t, err, query.ErrMessageUnreadable)

	_, err = query.New(b.db, nil, "").Get(b.ctx, id)
	require.ErrorContains(t, err, "no NATS connection")
	require.ErrorIs(t, err, query.ErrMessageUnreadable)
	// The redeliverer reads the message through its own connection, which
	// is up: the dead letter was never marked gone.
	_, err = b.r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.NoError(t, err)
}
