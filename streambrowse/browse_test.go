package streambrowse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

type testBundle struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func setup(t *testing.T) (*Browser, *testBundle) {
	t.Helper()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	b, err := New(nc)
	require.NoError(t, err)
	return b, &testBundle{nc: nc, js: js}
}

func seqs(p Page) []uint64 {
	out := make([]uint64, len(p.Items))
	for i, m := range p.Items {
		out[i] = m.Seq
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	if from <= to {
		for s := from; s <= to; s++ {
			out = append(out, s)
		}
		return out
	}
	for s := from; s >= to; s-- {
		out = append(out, s)
	}
	return out
}

// TestBrowseConsumesNothing browses a WorkQueue and an Interest stream,
// each with a consumer holding pending messages, through direct gets and
// through the message-get API, in every order, and checks that the
// stream keeps every message and the consumer its state, and that no
// consumer was made.
func TestBrowseConsumesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		retention jetstream.RetentionPolicy
		direct    bool
	}{
		{"workqueue direct", jetstream.WorkQueuePolicy, true},
		{"workqueue msg get", jetstream.WorkQueuePolicy, false},
		{"interest direct", jetstream.InterestPolicy, true},
		{"interest msg get", jetstream.InterestPolicy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, tb := setup(t)
			ctx := context.Background()
			s, err := tb.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"},
				Retention: tc.retention, AllowDirect: tc.direct})
			require.NoError(t, err)
			cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
			require.NoError(t, err)
			start := time.Now()
			for i := 1; i <= 30; i++ {
				subj := "orders.created"
				if i%3 == 0 {
					subj = "orders.shipped"
				}
				m := nats.NewMsg(subj)
				m.Data = fmt.Appendf(nil, `{"n":%d}`, i)
				m.Header.Set("X-N", fmt.Sprint(i))
				_, err := tb.js.PublishMsg(ctx, m)
				require.NoError(t, err)
			}
			// One acked, so the ack floor is not zero and must stay where it is.
			batch, err := cons.Fetch(1)
			require.NoError(t, err)
			for m := range batch.Messages() {
				require.NoError(t, m.DoubleAck(ctx))
			}
			// The consumer's counts settle after the ack; browsing must
			// then leave them as they are.
			var before *jetstream.ConsumerInfo
			natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				before, err = cons.Info(ctx)
				if err != nil {
					return err
				}
				if before.NumPending != 29 || before.AckFloor.Stream != 1 || before.NumAckPending != 0 {
					return fmt.Errorf("pending %d, ack floor %d, ack pending %d", before.NumPending, before.AckFloor.Stream, before.NumAckPending)
				}
				return nil
			})
			stateBefore, err := s.Info(ctx)
			require.NoError(t, err)

			p, err := b.Messages(ctx, "ORDERS", Query{Limit: 5})
			require.NoError(t, err)
			require.True(t, p.Newest)
			first := uint64(2) // the acked one is gone: its only consumer acked it
			require.Equal(t, span(30, 26), seqs(p))
			require.Equal(t, uint64(25), p.NextSeq)
			m := p.Items[0]
			require.Equal(t, "orders.shipped", m.Subject)
			require.Equal(t, `{"n":30}`, string(m.Payload))
			require.Equal(t, []string{"30"}, m.Headers["X-N"])
			require.Equal(t, 8, m.Size)
			require.WithinDuration(t, start, m.Time, time.Minute)
			for _, name := range directHeaders {
				require.NotContains(t, m.Headers, name, "what the direct get adds is not the message's")
			}

			// On from the cursor, to the first.
			p, err = b.Messages(ctx, "ORDERS", Query{StartSeq: p.NextSeq, Newest: true, Limit: 100})
			require.NoError(t, err)
			require.Equal(t, span(25, first), seqs(p))
			require.Zero(t, p.NextSeq)

			p, err = b.Messages(ctx, "ORDERS", Query{StartSeq: 10, Limit: 5})
			require.NoError(t, err)
			require.False(t, p.Newest)
			require.Equal(t, span(10, 14), seqs(p))
			require.Equal(t, uint64(15), p.NextSeq)

			p, err = b.Messages(ctx, "ORDERS", Query{Subject: "orders.shipped", Limit: 3})
			require.NoError(t, err)
			require.Equal(t, []uint64{30, 27, 24}, seqs(p))
			require.Equal(t, uint64(23), p.NextSeq)

			p, err = b.Messages(ctx, "ORDERS", Query{Subject: "orders.*", Around: 15, Limit: 4})
			require.NoError(t, err)
			require.Equal(t, span(13, 16), seqs(p))

			p, err = b.Messages(ctx, "ORDERS", Query{Since: start.Add(-time.Hour), Subject: "orders.shipped", Limit: 2})
			require.NoError(t, err)
			require.Equal(t, []uint64{3, 6}, seqs(p))
			require.Equal(t, uint64(9), p.NextSeq)
			p, err = b.Messages(ctx, "ORDERS", Query{Since: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			require.Empty(t, p.Items)

			after, err := cons.Info(ctx)
			require.NoError(t, err)
			require.Equal(t, before.NumPending, after.NumPending)
			require.Equal(t, before.NumAckPending, after.NumAckPending)
			require.Equal(t, before.AckFloor, after.AckFloor)
			require.Equal(t, before.Delivered, after.Delivered)
			stateAfter, err := s.Info(ctx)
			require.NoError(t, err)
			require.Equal(t, stateBefore.State.Msgs, stateAfter.State.Msgs)
			require.Equal(t, uint64(29), stateAfter.State.Msgs)
			require.Equal(t, 1, stateAfter.State.Consumers, "browsing made no consumer")
		})
	}
}

// TestBrowseSkipsGapsAndScansBack reads around deleted messages, finds
// sparse matches far back, and stops a long look back with a cursor.
func TestBrowseSkipsGapsAndScansBack(t *testing.T) {
	t.Parallel()
	b, tb := setup(t)
	ctx := context.Background()
	s, err := tb.js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"ev.>"}, AllowDirect: true})
	require.NoError(t, err)
	for i := 1; i <= 400; i++ {
		subj := "ev.common"
		if i == 5 || i == 250 {
			subj = "ev.rare"
		}
		_, err := tb.js.Publish(ctx, subj, []byte("x"))
		require.NoError(t, err)
	}
	for _, seq := range []uint64{398, 399, 10, 11} {
		require.NoError(t, s.DeleteMsg(ctx, seq))
	}
	p, err := b.Messages(ctx, "EVENTS", Query{Limit: 4})
	require.NoError(t, err)
	require.Equal(t, []uint64{400, 397, 396, 395}, seqs(p))
	p, err = b.Messages(ctx, "EVENTS", Query{StartSeq: 9, Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []uint64{9, 12, 13}, seqs(p))
	p, err = b.Messages(ctx, "EVENTS", Query{Subject: "ev.rare"})
	require.NoError(t, err)
	require.Equal(t, []uint64{250, 5}, seqs(p))
	require.Zero(t, p.NextSeq)
	require.False(t, p.ScanStopped)
	p, err = b.Messages(ctx, "EVENTS", Query{Subject: "ev.none"})
	require.NoError(t, err)
	require.Empty(t, p.Items)

	// A look back that finds too little in its limit stops with a cursor
	// that goes on where it stopped.
	b.scanLimit = 50
	p, err = b.Messages(ctx, "EVENTS", Query{Subject: "ev.rare"})
	require.NoError(t, err)
	require.Empty(t, p.Items, "nothing rare among the newest sequences")
	require.True(t, p.ScanStopped)
	require.Greater(t, p.NextSeq, uint64(250))
	require.Less(t, p.NextSeq, uint64(400))
	var found []uint64
	for i := 0; p.NextSeq > 0 && i < 20; i++ {
		p, err = b.Messages(ctx, "EVENTS", Query{Subject: "ev.rare", StartSeq: p.NextSeq, Newest: true})
		require.NoError(t, err)
		found = append(found, seqs(p)...)
	}
	require.Equal(t, []uint64{250, 5}, found, "following the cursor finds every match, once")
}

// TestBrowseBoundsPayloads keeps the first MaxShownPayload bytes of a
// large payload and says how large it was.
func TestBrowseBoundsPayloads(t *testing.T) {
	t.Parallel()
	b, tb := setup(t)
	ctx := context.Background()
	_, err := tb.js.CreateStream(ctx, jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big"}, AllowDirect: true})
	require.NoError(t, err)
	large := bytes.Repeat([]byte("a"), MaxShownPayload+1000)
	_, err = tb.js.Publish(ctx, "big", large)
	require.NoError(t, err)
	p, err := b.Messages(ctx, "BIG", Query{})
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	require.True(t, p.Items[0].Truncated)
	require.Equal(t, len(large), p.Items[0].Size)
	require.Len(t, p.Items[0].Payload, MaxShownPayload)
}

// TestBrowseRefusesHostileInput refuses bad names and filters before they
// reach the connection, and reports an unknown stream as such; the
// connection stays up and the stream untouched.
func TestBrowseRefusesHostileInput(t *testing.T) {
	t.Parallel()
	b, tb := setup(t)
	ctx := context.Background()
	s, err := tb.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = tb.js.Publish(ctx, "orders.x", []byte("x"))
	require.NoError(t, err)

	for _, tc := range []struct {
		stream string
		q      Query
	}{
		{"ORDERS", Query{Subject: "orders.>.x"}},
		{"ORDERS", Query{Subject: "orders x\r\nPUB evil 1"}},
		{"ORDERS", Query{Subject: strings.Repeat("a.", 2000) + "a"}},
		{"ORDERS", Query{Subject: "orders..x"}},
		{"ORD.ERS", Query{}},
		{"ORDERS\r\nSUB >", Query{}},
		{strings.Repeat("S", 300), Query{}},
		{"ORDERS", Query{StartSeq: 1, Around: 2}},
		{"ORDERS", Query{Limit: MaxLimit + 1}},
	} {
		_, err := b.Messages(ctx, tc.stream, tc.q)
		require.ErrorIs(t, err, natsname.ErrInvalid, "%q %+v", tc.stream, tc.q)
	}
	_, err = b.Messages(ctx, "NOPE", Query{})
	require.ErrorIs(t, err, ErrUnknownStream)
	require.False(t, errors.Is(err, natsname.ErrInvalid))

	require.True(t, tb.nc.IsConnected())
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
	p, err := b.Messages(ctx, "ORDERS", Query{})
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
}

// TestBrowseWithoutPermission fails, rather than hangs, when jetwatch's
// user may not read messages, within the request timeout, and the
// connection stays up.
func TestBrowseWithoutPermission(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "jw", Password: "jw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>"}}}}}
	})
	nc := natstest.Connect(t, s, nats.UserInfo("jw", "jw"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	for _, direct := range []bool{true, false} {
		name := fmt.Sprintf("S%v", direct)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, AllowDirect: direct})
		require.NoError(t, err)
		_, err = js.Publish(ctx, name, []byte("x"))
		require.NoError(t, err)
		b, err := New(nc)
		require.NoError(t, err)
		start := time.Now()
		_, err = b.Messages(ctx, name, Query{})
		require.Error(t, err)
		require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrPermissionViolation), "%v", err)
		require.Less(t, time.Since(start), browseTimeout, "one request's timeout, not the page's")
		require.True(t, nc.IsConnected())
	}
}
