package journey_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/store"
)

type testBundle struct {
	nc *nats.Conn
	js jetstream.JetStream
	db *store.DB
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	db, err := store.OpenFile(context.Background(), filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	for _, s := range []jetstream.StreamConfig{{Name: "ORDERS", Subjects: []string{"orders.>"}},
		{Name: "PAYMENTS", Subjects: []string{"payments.>"}}, {Name: "AUDITLOG", Subjects: []string{"auditlog.>"}}} {
		_, err := js.CreateStream(context.Background(), s)
		require.NoError(t, err)
	}
	return &testBundle{nc: nc, js: js, db: db}
}

// publish publishes a message with the order id as a header (or, with
// asJSON, in the payload) and a traceparent when trace is set.
func (b *testBundle) publish(t *testing.T, subject, order string, asJSON bool, trace string) uint64 {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(`{"amount":12}`)
	if asJSON {
		m.Data = []byte(fmt.Sprintf(`{"order_id":%q,"amount":12}`, order))
	} else if order != "" {
		m.Header.Set("X-Order-Id", order)
	}
	if trace != "" {
		m.Header.Set("traceparent", "00-"+trace+"-b7ad6b7169203331-01")
	}
	ack, err := b.js.PublishMsg(context.Background(), m)
	require.NoError(t, err)
	return ack.Sequence
}

func patterns(t *testing.T, list ...string) func(string) bool {
	t.Helper()
	p, err := collector.ParseStreamPatterns(list)
	require.NoError(t, err)
	return p.Match
}

func correlations(t *testing.T) journey.Correlations {
	t.Helper()
	cs, err := journey.ParseCorrelations("order=header:X-Order-Id,order=json:order_id")
	require.NoError(t, err)
	return cs
}

const trace1 = "0af7651916cd43dd8448eb211c80319c"

// TestIndexFollowsStreams indexes a journey across two streams, by its
// correlation value and its trace id, leaves out messages without keys
// and streams not asked for, picks up a stream made later and stops
// following one deleted.
func TestIndexFollowsStreams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.publish(t, "orders.created", "o-1", false, trace1)
	b.publish(t, "orders.created", "", false, "") // no key: not indexed
	b.publish(t, "payments.requested", "o-1", true, "")
	b.publish(t, "auditlog.order", "o-1", false, "") // a stream not asked for
	ix, err := journey.NewIndex(b.js, b.db, journey.IndexConfig{Streams: patterns(t, "ORDERS", "PAY*", "SHIP*"),
		Correlations: correlations(t), Discover: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, ix.Start(ctx))
	t.Cleanup(ix.Stop)
	r := journey.NewReader(b.db)

	steps := func(key string, want int) []journey.Step {
		var j journey.Journey
		natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			var err error
			if j, err = r.Journey(ctx, key); err != nil {
				return err
			}
			if len(j.Steps) != want {
				return fmt.Errorf("%d steps, want %d", len(j.Steps), want)
			}
			return nil
		})
		return j.Steps
	}
	s := steps("o-1", 2)
	require.Equal(t, []string{"orders.created", "payments.requested"}, []string{s[0].Subject, s[1].Subject})
	require.Equal(t, []string{"ORDERS", "PAYMENTS"}, []string{s[0].Stream, s[1].Stream})
	require.Equal(t, trace1, s[0].TraceID)
	require.Equal(t, []string{"order"}, s[1].MatchedBy)
	require.Len(t, steps(trace1, 1), 1)
	n, err := b.db.JourneyRowCount(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "the first message and the third; none of the others")

	// A stream made while running is followed; one deleted is dropped.
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHIPPING", Subjects: []string{"shipping.>"}})
	require.NoError(t, err)
	b.publish(t, "shipping.sent", "o-1", false, "")
	s = steps("o-1", 3)
	require.Equal(t, "shipping.sent", s[2].Subject)
	require.NoError(t, b.js.DeleteStream(ctx, "SHIPPING"))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if f := ix.Followed(); !slices.Equal(f, []string{"ORDERS", "PAYMENTS"}) {
			return fmt.Errorf("following %v", f)
		}
		return nil
	})
	pos, err := b.db.Position(ctx, "journey:SHIPPING")
	require.NoError(t, err)
	require.Zero(t, pos, "a stream made again under the name starts at 1")
	// Its rows stay until retention; the other streams go on.
	b.publish(t, "orders.shipped", "o-1", false, "")
	s = steps("o-1", 4)
	require.Equal(t, "orders.shipped", s[3].Subject)
	// A stream not asked for was never read.
	st, err := b.js.Stream(ctx, "AUDITLOG")
	require.NoError(t, err)
	require.Zero(t, st.CachedInfo().State.Consumers, "streams not asked for are not read")
}

// TestIndexTrims deletes rows past retention and over the row cap, and
// keeps the rest findable.
func TestIndexTrims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := range 30 {
		b.publish(t, "orders.created", fmt.Sprintf("o-%d", i), false, "")
	}
	now := time.Now()
	clock := func() time.Time { return now }
	ix, err := journey.NewIndex(b.js, b.db, journey.IndexConfig{Streams: patterns(t, "ORDERS"), Correlations: correlations(t),
		Batch: 10, Now: func() time.Time { return clock() }})
	require.NoError(t, err)
	require.NoError(t, ix.CatchUp(ctx))
	count := func() int64 {
		n, err := b.db.JourneyRowCount(ctx)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, int64(30), count())
	trimmed, err := ix.Trim(ctx)
	require.NoError(t, err)
	require.Zero(t, trimmed, "nothing is older than retention yet")

	// A row cap deletes the oldest batches.
	capped, err := journey.NewIndex(b.js, b.db, journey.IndexConfig{Streams: patterns(t, "ORDERS"), Correlations: correlations(t),
		MaxRows: 15})
	require.NoError(t, err)
	trimmed, err = capped.Trim(ctx)
	require.NoError(t, err)
	// Batches hold up to 10 (fewer when the reader cut one short): whole
	// ones go, oldest first, until at most 15 rows are left.
	left := count()
	require.LessOrEqual(t, left, int64(15))
	require.Positive(t, left)
	require.Equal(t, int64(30), trimmed+left)
	j, err := journey.NewReader(b.db).Journey(ctx, "o-29")
	require.NoError(t, err)
	require.Len(t, j.Steps, 1, "the newest are kept")
	j, err = journey.NewReader(b.db).Journey(ctx, "o-0")
	require.NoError(t, err)
	require.Empty(t, j.Steps, "the oldest are gone")

	// Past retention, everything goes.
	clock = func() time.Time { return now.Add(journey.DefaultRetention + time.Minute) }
	trimmed, err = ix.Trim(ctx)
	require.NoError(t, err)
	require.Equal(t, left, trimmed)
	require.Zero(t, count())
	// The index goes on from where it was: nothing is indexed twice.
	b.publish(t, "orders.created", "o-new", false, "")
	require.NoError(t, ix.CatchUp(ctx))
	require.Equal(t, int64(1), count())
}

// TestIndexTapsWorkQueues follows a WorkQueue stream, which no second
// reader may read without consuming, live from its subjects: its messages
// are indexed and stay in the stream for their consumer.
func TestIndexTapsWorkQueues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy})
	require.NoError(t, err)
	_, err = b.js.CreateConsumer(ctx, "JOBS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	ix, err := journey.NewIndex(b.js, b.db, journey.IndexConfig{Streams: patterns(t, "JOBS"), Correlations: correlations(t),
		Discover: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, ix.Start(ctx))
	t.Cleanup(ix.Stop)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if f := ix.Followed(); !slices.Equal(f, []string{"JOBS"}) {
			return fmt.Errorf("following %v", f)
		}
		return nil
	})
	b.publish(t, "jobs.charge", "o-9", true, trace1)
	var j journey.Journey
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if j, err = journey.NewReader(b.db).Journey(ctx, "o-9"); err != nil || len(j.Steps) != 1 {
			return fmt.Errorf("journey %+v (%v)", j, err)
		}
		return nil
	})
	require.Equal(t, "jobs.charge", j.Steps[0].Subject)
	require.Equal(t, trace1, j.Steps[0].TraceID)
	require.Zero(t, j.Steps[0].Seq, "a message followed live has no known sequence")
	st, err := b.js.Stream(ctx, "JOBS")
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.CachedInfo().State.Msgs, "nothing was consumed")
	require.Equal(t, 1, st.CachedInfo().State.Consumers, "no reader was added to the work queue")
}
