package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

type deadLetterRow struct {
	ID               int64
	Stream, Consumer string
	Subject          string
	StreamSeq        uint64
	Reason, Error    string
	Deliveries       uint64
	PayloadAvailable bool
	UnavailableWhy   string
	Headers          map[string][]string
	Payload          []byte
}

// deadLetters is every dead letter indexed, with the headers and payload
// the dashboard shows (read from the DLQ stream).
func deadLetters(t *testing.T, b *testBundle) []deadLetterRow {
	t.Helper()
	rows, err := b.db.SQLForTests().Query(`SELECT id FROM dead_letters ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	q := query.New(b.db, b.js, "")
	var out []deadLetterRow
	for rows.Next() {
		var id uint64
		require.NoError(t, rows.Scan(&id))
		d, err := q.Get(context.Background(), id)
		require.NoError(t, err)
		out = append(out, deadLetterRow{ID: int64(d.ID), Stream: d.Stream, Consumer: d.Consumer, Subject: d.Subject,
			StreamSeq: d.StreamSeq, Reason: d.Reason, Error: d.Error, Deliveries: d.Deliveries,
			PayloadAvailable: d.PayloadAvailable, UnavailableWhy: d.UnavailableWhy, Headers: d.Headers, Payload: d.Payload})
	}
	require.NoError(t, rows.Err())
	return out
}

// fail delivers the next message of cons and settles it with how.
func fail(t *testing.T, cons jetstream.Consumer, how func(jetstream.Msg) error) {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	n := 0
	for m := range batch.Messages() {
		require.NoError(t, how(m))
		n++
	}
	require.Equal(t, 1, n, "a message was delivered")
}

func startDeadLetterDesk(t *testing.T, b *testBundle) (*Bridge, *index.Index) {
	t.Helper()
	bridge := startBridge(t, b, BridgeConfig{})
	ix, err := index.New(b.nc, b.db, index.Config{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, ix.Start(context.Background()))
	t.Cleanup(ix.Stop)
	return bridge, ix
}

func waitDeadLetters(t *testing.T, b *testBundle, n int) []deadLetterRow {
	t.Helper()
	var rows []deadLetterRow
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		rows = deadLetters(t, b)
		if len(rows) < n {
			return fmt.Errorf("%d dead letters indexed, want %d", len(rows), n)
		}
		return nil
	})
	require.Len(t, rows, n)
	return rows
}

func TestBridgeCapturesMaxDeliverWithPayloadAndHeaders(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	startDeadLetterDesk(t, b)

	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, AckWait: time.Second})
	require.NoError(t, err)
	msg := nats.NewMsg("orders.created")
	msg.Data = []byte(`{"order_id":"ord-1","note":"<script>alert(1)</script>"}`)
	msg.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	msg.Header.Set("Nats-Msg-Id", "order-1")
	_, err = b.js.PublishMsg(ctx, msg)
	require.NoError(t, err)

	fail(t, cons, func(m jetstream.Msg) error { return m.Nak() })
	fail(t, cons, func(m jetstream.Msg) error { return m.Nak() })
	// MAX_DELIVERIES fires when the server would deliver again: keep a pull
	// outstanding.
	_, err = cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
	require.NoError(t, err)

	rows := waitDeadLetters(t, b, 1)
	r := rows[0]
	require.Equal(t, "ORDERS", r.Stream)
	require.Equal(t, "billing", r.Consumer)
	require.Equal(t, "orders.created", r.Subject)
	require.Equal(t, uint64(1), r.StreamSeq)
	require.Equal(t, dlq.ReasonMaxDeliver, r.Reason)
	require.Equal(t, uint64(2), r.Deliveries)
	require.True(t, r.PayloadAvailable)
	require.Equal(t, msg.Data, r.Payload)
	require.Equal(t, []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, r.Headers["traceparent"])
	require.Equal(t, []string{"order-1"}, r.Headers["Dlq-Original-Msg-Id"])
	require.Equal(t, []string{"ORDERS:1:billing"}, r.Headers["Nats-Msg-Id"])
}

func TestBridgeCapturesTerminationsAndMissingPayloads(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	startDeadLetterDesk(t, b)

	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}})
	require.NoError(t, err)
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy})
	require.NoError(t, err)
	events, err := b.js.CreateOrUpdateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	jobs, err := b.js.CreateOrUpdateConsumer(ctx, "JOBS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "events.user", []byte("\x00\x01binary\xff"))
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "jobs.resize", []byte(`{"image":"cat.png"}`))
	require.NoError(t, err)

	fail(t, events, func(m jetstream.Msg) error { return m.TermWithReason("schema v3 not supported") })
	rows := waitDeadLetters(t, b, 1)
	require.Equal(t, dlq.ReasonTerminated, rows[0].Reason)
	require.Equal(t, "schema v3 not supported", rows[0].Error)
	require.True(t, rows[0].PayloadAvailable, "a Limits stream keeps a terminated message")
	require.Equal(t, []byte("\x00\x01binary\xff"), rows[0].Payload)

	fail(t, jobs, func(m jetstream.Msg) error { return m.TermWithReason("image too large") })
	rows = waitDeadLetters(t, b, 2)
	r := rows[1]
	require.Equal(t, "JOBS", r.Stream)
	require.Equal(t, "worker", r.Consumer)
	require.Equal(t, dlq.ReasonTerminated, r.Reason)
	require.False(t, r.PayloadAvailable, "Term on a WorkQueue removes the message")
	require.Contains(t, r.UnavailableWhy, "WorkQueue")
	require.Empty(t, r.Payload)
}

func TestDeadLettersWhileJetwatchIsDownAreCapturedAndReindexMatches(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	bridge, ix := startDeadLetterDesk(t, b)
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAY", Subjects: []string{"pay.>"}})
	require.NoError(t, err)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "PAY", jetstream.ConsumerConfig{Durable: "capture", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	// jetwatch goes away; failures go on.
	bridge.Stop()
	ix.Stop()
	for i := range 5 {
		_, err := b.js.Publish(ctx, "pay.card", fmt.Appendf(nil, `{"n":%d}`, i))
		require.NoError(t, err)
		fail(t, cons, func(m jetstream.Msg) error { return m.TermWithReason(fmt.Sprintf("declined %d", i)) })
	}
	require.Empty(t, deadLetters(t, b))

	// It comes back: everything that happened is captured, once.
	startDeadLetterDesk(t, b)
	live := waitDeadLetters(t, b, 5)
	// The bridge works on several advisories at once, so dead letters may
	// reach the DLQ in another order than they failed.
	seen := map[string][]byte{}
	for _, r := range live {
		seen[r.Error] = r.Payload
	}
	for i := range 5 {
		require.Equal(t, fmt.Appendf(nil, `{"n":%d}`, i), seen[fmt.Sprintf("declined %d", i)])
	}

	// Rebuilding the index from the DLQ stream gives the same rows.
	ix2, err := index.New(b.nc, b.db, index.Config{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, ix2.Reset(ctx))
	require.Empty(t, deadLetters(t, b))
	require.NoError(t, ix2.CatchUp(ctx))
	require.Equal(t, live, deadLetters(t, b))
}
