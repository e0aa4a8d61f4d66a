package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// reindex rebuilds the dead-letter index from the DLQ stream and forgets
// the advisory timeline, which the next serve rebuilds.
func TestReindexRebuildsDeadLettersAndForgetsTheTimeline(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := t.Context()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{deadletter.SubjectPrefix + ".>"}})
	require.NoError(t, err)
	for i := range 3 {
		m := nats.NewMsg(deadletter.Subject("ORDERS", "billing"))
		deadletter.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: uint64(i + 1), Consumer: "billing",
			Deliveries: 5, Reason: deadletter.ReasonMaxDeliver, Error: "card declined", FailedAt: time.Now()}.Apply(m.Header)
		m.Data = []byte(`{"order":1}`)
		_, err := js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}

	data := t.TempDir()
	db, err := store.Open(ctx, data)
	require.NoError(t, err)
	require.NoError(t, db.RecordEvent(ctx, store.Event{ID: 7, Kind: "stream_created", At: time.Now(), Stream: "ORDERS", Severity: "info", Summary: "created"}, "{}"))
	require.NoError(t, db.Close())

	// An --account's partition is not reindexed; reindex says how to
	// rebuild it.
	env := func(k string) string {
		return map[string]string{"NATS_URL": srv.ClientURL(), "JETWATCH_ACCOUNTS": "B=team-b"}[k]
	}
	out := &syncBuffer{}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, run(rctx, []string{"reindex", "--data", data}, env, out))
	require.Contains(t, out.String(), "reindexed 3 dead letters from stream DLQ")
	require.Contains(t, out.String(), "account B: not reindexed; to rebuild its index, stop jetwatch, delete "+accountPartition(data, "B")+" and start it again")

	db, err = store.OpenFile(ctx, filepath.Join(data, filepath.Base(db.Path())))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	n, err := db.CountDeadLetters(ctx, store.DeadLetterFilter{Stream: "ORDERS", Reason: deadletter.ReasonMaxDeliver})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	events, err := db.Events(ctx, store.EventFilter{})
	require.NoError(t, err)
	require.Empty(t, events, "the timeline is forgotten, to be rebuilt from the capture stream")
}
