package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
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

type letter struct {
	stream, consumer, subject, reason, errText string
	payload                                    []byte
	at                                         time.Time
}

// indexed publishes letters to a real DLQ stream, indexes them into a
// real SQLite file and returns queries over it.
func indexed(t *testing.T, letters []letter, raw ...*nats.Msg) *Queries {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}})
	require.NoError(t, err)
	for i, l := range letters {
		m := nats.NewMsg(dlq.Subject(l.stream, l.consumer))
		m.Data = l.payload
		m.Header.Set("traceparent", fmt.Sprintf("00-%032d-%016d-01", i+1, i+1))
		dlq.Envelope{Stream: l.stream, Subject: l.subject, Sequence: uint64(i + 1), Consumer: l.consumer, Deliveries: 3,
			Reason: l.reason, Error: l.errText, FailedAt: l.at}.Apply(m.Header)
		_, err := js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	for _, m := range raw {
		_, err := js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	ix, err := index.New(nc, db, index.Config{Batch: 7})
	require.NoError(t, err)
	require.NoError(t, ix.CatchUp(ctx))
	return New(db, js, "DLQ")
}

func TestQueriesFilterSearchAndPaginate(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var letters []letter
	for i := range 30 {
		l := letter{stream: "ORDERS", consumer: "billing", subject: "orders.created.eu", reason: dlq.ReasonMaxDeliver,
			errText: fmt.Sprintf("timeout after %d ms", 100+i), payload: fmt.Appendf(nil, `{"order":"ord-%d","customer":"ann"}`, i),
			at: base.Add(time.Duration(i) * time.Minute)}
		if i%3 == 0 {
			l.consumer, l.subject, l.reason, l.errText = "shipping", "orders.paid.us", dlq.ReasonTerminated, `courier "DHL" rejected parcel`
		}
		letters = append(letters, l)
	}
	letters = append(letters, letter{stream: "TELEMETRY", consumer: "decoder", subject: "telemetry.frame", reason: dlq.ReasonError,
		errText: "corrupt frame", payload: []byte{0x00, 0xff, 'a', 'n', 'n'}, at: base.Add(time.Hour)})
	garbage := nats.NewMsg("dlq.PAYMENTS.processor")
	garbage.Data = []byte("left by a script without headers")
	q := indexed(t, letters, garbage)
	ctx := context.Background()

	count := func(f store.DeadLetterFilter) int {
		n, err := q.Count(ctx, f)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 32, count(store.DeadLetterFilter{}))
	require.Equal(t, 30, count(store.DeadLetterFilter{Stream: "ORDERS"}))
	require.Equal(t, 10, count(store.DeadLetterFilter{Consumer: "shipping"}))
	require.Equal(t, 20, count(store.DeadLetterFilter{Subject: "orders.created.*"}))
	require.Equal(t, 30, count(store.DeadLetterFilter{Subject: "orders.>"}))
	require.Equal(t, 10, count(store.DeadLetterFilter{Subject: "*.paid.us"}))
	require.Equal(t, 10, count(store.DeadLetterFilter{Reason: dlq.ReasonTerminated}))
	require.Equal(t, 32, count(store.DeadLetterFilter{Status: store.StatusPending}))
	require.Equal(t, 10, count(store.DeadLetterFilter{Since: base.Add(20 * time.Minute), Until: base.Add(29 * time.Minute)}))
	require.Equal(t, 30, count(store.DeadLetterFilter{Q: "ann"}), "payload text is searched; the binary one is not")
	require.Equal(t, 10, count(store.DeadLetterFilter{Q: "dhl"}), "error text is searched")
	require.Equal(t, 1, count(store.DeadLetterFilter{Q: "ord-7"}))
	require.Equal(t, 10, count(store.DeadLetterFilter{Q: `courier "DH`}), "quotes are literal and the last word a prefix")
	require.Equal(t, 1, count(store.DeadLetterFilter{Q: "script headers"}))
	for _, c := range []struct {
		f     store.DeadLetterFilter
		limit int
		n     int
		more  bool
	}{
		{store.DeadLetterFilter{Q: "ann"}, 100, 30, false}, // counted in the full-text index alone
		{store.DeadLetterFilter{Q: "ann"}, 10, 10, true},
		{store.DeadLetterFilter{Q: "ann", Consumer: "shipping"}, 100, 10, false},
		{store.DeadLetterFilter{Q: "nothing-like-it"}, 100, 0, false},
	} {
		n, more, err := q.CountUpTo(ctx, c.f, c.limit)
		require.NoError(t, err)
		require.Equal(t, c.n, n, "%+v", c.f)
		require.Equal(t, c.more, more, "%+v", c.f)
	}

	_, err := q.Count(ctx, store.DeadLetterFilter{Reason: "exploded"})
	require.True(t, errors.Is(err, store.ErrBadFilter))
	_, err = q.Count(ctx, store.DeadLetterFilter{Subject: "orders..x"})
	require.True(t, errors.Is(err, store.ErrBadFilter))
	_, err = q.List(ctx, store.DeadLetterFilter{}, 10, "garbage")
	require.True(t, errors.Is(err, store.ErrBadFilter))

	// Keyset pages cover everything once, newest first.
	seen := map[uint64]bool{}
	cursor := ""
	var last time.Time
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		p, err := q.List(ctx, store.DeadLetterFilter{Stream: "ORDERS"}, 7, cursor)
		require.NoError(t, err)
		for _, d := range p.Items {
			require.False(t, seen[d.ID], "dead letter %d listed twice", d.ID)
			seen[d.ID] = true
			if !last.IsZero() {
				require.False(t, d.FailedAt.After(last), "newest first")
			}
			last = d.FailedAt
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	require.Len(t, seen, 30)

	// The garbage message is indexed with what can be inferred.
	p, err := q.List(ctx, store.DeadLetterFilter{Stream: "PAYMENTS"}, 10, "")
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	d, err := q.Get(ctx, p.Items[0].ID)
	require.NoError(t, err)
	require.Equal(t, "processor", d.Consumer)
	require.Equal(t, dlq.ReasonError, d.Reason)
	require.NotEmpty(t, d.Problems)
	require.Equal(t, []byte("left by a script without headers"), d.Payload)

	d, err = q.Get(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, `{"order":"ord-1","customer":"ann"}`, string(d.Payload))
	require.Equal(t, []string{"00-00000000000000000000000000000002-0000000000000002-01"}, d.Headers["traceparent"])
	require.Equal(t, "orders.created.eu", d.Subject)
	_, err = q.Get(ctx, 999)
	require.ErrorIs(t, err, store.ErrNotFound)

	groups, err := q.Groups(ctx, store.DeadLetterFilter{Stream: "ORDERS"}, 10, base.Add(30*time.Minute), 30*time.Minute, 6)
	require.NoError(t, err)
	require.Len(t, groups, 2)
	require.Equal(t, "timeout after <n> ms", groups[0].Fingerprint)
	require.Equal(t, 20, groups[0].Count)
	require.Equal(t, 10, groups[1].Count)
	total := 0
	for _, n := range groups[0].Trend {
		total += n
	}
	require.Equal(t, 20, total, "every one of them failed within the trend window")
}

func TestSubjectWildcardsKeepNATSSemantics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	subjects := []string{"orders", "orders.eu", "orders.eu.paid", "orders.us.paid", "orders.eu.x.paid", "orders.eu.paid.late",
		"a.orders.eu.paid", "orders.e*u.paid", "orders.e>u.paid", "ord.eu.paid", "orders.eu.c.paid", "x.y.c.z", "x.y.q.c.z", "a?b.c"}
	for i, s := range subjects {
		_, err := db.SQLForTests().ExecContext(ctx, `INSERT INTO dead_letters (id, dlq_subject, stream, consumer, subject, stream_seq,
			reason, error, service, deliveries, failed_at, indexed_at, payload_available, unavailable_why, size, fingerprint,
			problems) VALUES (?, '', 'S', 'c', ?, 0, 'error', '', '', 0, 0, 0, 1, '', 0, '', 'null')`, i+1, s)
		require.NoError(t, err)
	}
	q := New(db, nil, "")
	for _, p := range []string{"*", ">", "orders.*", "orders.>", "orders.*.paid", "*.eu.paid", "*.*.paid", "orders.*.>",
		"*.y.c.>", "x.*.c.>", "orders.e*u.paid", "orders.e*u.>", "orders.e>u.paid", "a?b.*", "orders.eu.*.>", "*.*.*.*"} {
		want := 0
		for _, s := range subjects {
			if store.SubjectMatches(p, s) {
				want++
			}
		}
		got, err := q.Count(ctx, store.DeadLetterFilter{Subject: p})
		require.NoError(t, err)
		require.Equal(t, want, got, "pattern %s", p)
	}
}

func TestFiltersAreBounded(t *testing.T) {
	t.Parallel()
	q := indexed(t, []letter{{stream: "ORDERS", consumer: "billing", subject: "orders.created", reason: dlq.ReasonError,
		errText: "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16", payload: []byte("x"), at: time.Now()}})
	ctx := context.Background()

	words := func(n int) string {
		var w []string
		for i := range n {
			w = append(w, fmt.Sprintf("w%d", i+1))
		}
		return strings.Join(w, " ")
	}
	n, err := q.Count(ctx, store.DeadLetterFilter{Q: words(store.MaxSearchTerms)})
	require.NoError(t, err)
	require.Equal(t, 1, n, "16 words is within the limit")

	for _, c := range []struct {
		f    store.DeadLetterFilter
		want string
	}{
		{store.DeadLetterFilter{Q: words(store.MaxSearchTerms + 1)}, "q has 17 words: search with at most 16"},
		{store.DeadLetterFilter{Q: strings.Repeat("a", 488<<10)}, "q is 499712 bytes: search with at most 512"},
		{store.DeadLetterFilter{Q: strings.Repeat("a-", 300)}, "q is 600 bytes"},
		{store.DeadLetterFilter{Stream: strings.Repeat("S", 256)}, "stream is 256 bytes: NATS names are at most 255"},
		{store.DeadLetterFilter{Consumer: strings.Repeat("c", 5000)}, "consumer is 5000 bytes"},
		{store.DeadLetterFilter{Subject: strings.Repeat("s", 5000)}, "subject is 5000 bytes"},
		{store.DeadLetterFilter{IDs: []uint64{1, 1 << 63}}, "selection: 9223372036854775808 is not a dead letter id"},
		{store.DeadLetterFilter{IDs: []uint64{0}}, "selection: 0 is not a dead letter id"},
		{store.DeadLetterFilter{MaxID: math.MaxUint64}, "max_id"},
	} {
		_, err := q.Count(ctx, c.f)
		require.ErrorIs(t, err, store.ErrBadFilter)
		require.Contains(t, err.Error(), c.want)
		require.Less(t, len(err.Error()), 200, "the message does not echo the input")
		_, err = q.List(ctx, c.f, 10, "")
		require.ErrorIs(t, err, store.ErrBadFilter)
	}
	for _, cursor := range []string{"9223372036854775808", "18446744073709551615", "-1", "abc", strings.Repeat("9", 5000)} {
		_, err := q.List(ctx, store.DeadLetterFilter{}, 10, cursor)
		require.ErrorIs(t, err, store.ErrBadFilter, cursor)
		require.Less(t, len(err.Error()), 200)
	}
	p, err := q.List(ctx, store.DeadLetterFilter{}, 10, "9223372036854775807")
	require.NoError(t, err)
	require.Len(t, p.Items, 1, "the largest cursor lists everything")
}
