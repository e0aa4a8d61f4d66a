package query

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
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// messagesBundle is a real NATS server with a DLQ stream as jetwatch
// creates it, an index into a real SQLite file, and queries over both.
type messagesBundle struct {
	js  jetstream.JetStream
	ix  *index.Index
	q   *Queries
	db  *store.DB
	ctx context.Context
}

func setupMessages(t *testing.T) *messagesBundle {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true})
	require.NoError(t, err)
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	ix, err := index.New(nc, db, index.Config{})
	require.NoError(t, err)
	return &messagesBundle{js: js, ix: ix, q: New(db, js, ""), db: db, ctx: ctx}
}

// deadLetter publishes one dead letter of orders.created and indexes it.
func (b *messagesBundle) deadLetter(t *testing.T, payload string) uint64 {
	t.Helper()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(payload)
	dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: 7, Consumer: "billing", Reason: dlq.ReasonMaxDeliver, FailedAt: time.Now()}.Apply(m.Header)
	ack, err := b.js.PublishMsg(b.ctx, m)
	require.NoError(t, err)
	require.NoError(t, b.ix.CatchUp(b.ctx))
	return ack.Sequence
}

func TestManyDeadLettersReadAsARangeOrOneByOne(t *testing.T) {
	t.Parallel()
	b := setupMessages(t)
	var ids []uint64
	for i := range 6 {
		ids = append(ids, b.deadLetter(t, fmt.Sprintf(`{"order":"ord-%d"}`, i)))
	}
	s, err := b.js.Stream(b.ctx, "DLQ")
	require.NoError(t, err)
	require.NoError(t, s.DeleteMsg(b.ctx, ids[2]))
	require.NoError(t, s.DeleteMsg(b.ctx, ids[5]))

	check := func(q *Queries, ids []uint64) {
		t.Helper()
		got, err := q.GetMany(b.ctx, ids)
		require.NoError(t, err)
		require.Len(t, got, len(ids))
		for _, id := range ids {
			one, err := q.Get(b.ctx, id)
			require.NoError(t, err)
			require.Equal(t, one, got[id], "read in a batch as read alone")
		}
		for _, id := range ids {
			d := got[id]
			if id == 3 || id == 6 {
				require.False(t, d.PayloadAvailable, "dead letter %d was deleted", id)
				require.Contains(t, d.UnavailableWhy, "no longer holds")
				continue
			}
			require.True(t, d.PayloadAvailable)
			require.Equal(t, fmt.Sprintf(`{"order":"ord-%d"}`, id-1), string(d.Payload))
			require.Equal(t, []string{"billing"}, d.Headers["Dlq-Consumer"])
			for _, k := range []string{"Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Time-Stamp", "Nats-Num-Pending", "Nats-Last-Sequence"} {
				require.NotContains(t, d.Headers, k, "a direct get's own header is not the dead letter's")
			}
		}
	}
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, ids)
	check(b.q, ids)               // one range, two gaps, the last one gone
	check(b.q, []uint64{1, 4, 6}) // dense enough for a range
	check(b.q, []uint64{2, 5})    // one by one
	check(New(b.db, b.js, "DLQ"), []uint64{1, 2, 3})

	// A DLQ stream without direct gets (an owner's choice) is read
	// through the stream API, with the same result.
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	_, err = b.js.UpdateStream(b.ctx, cfg)
	require.NoError(t, err)
	check(New(b.db, b.js, "DLQ"), ids)
}
