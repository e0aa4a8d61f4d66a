package bulk

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// deskBundle is a dead-letter desk on a real server and index, as jetwatch
// wires it, for the runner to act through.
type deskBundle struct {
	js  jetstream.JetStream
	ix  *index.Index
	q   *query.Queries
	r   *redeliver.Redeliverer
	db  *store.DB
	ctx context.Context
}

func setupDesk(t testing.TB) *deskBundle {
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
	r, err := redeliver.New(nc, db, redeliver.Config{})
	require.NoError(t, err)
	return &deskBundle{js: js, ix: ix, q: query.New(db, js, ""), r: r, db: db, ctx: ctx}
}

// deadLetter publishes one dead letter of orders.created and indexes it.
func (b *deskBundle) deadLetter(t *testing.T, payload string, unavailable bool) uint64 {
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
func (b *deskBundle) manyDeadLetters(t testing.TB, n int) {
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

func (b *deskBundle) ordersCount(t testing.TB) uint64 {
	t.Helper()
	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	return s.CachedInfo().State.Msgs
}
