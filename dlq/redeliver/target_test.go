package redeliver

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// hostileTargets are subjects an operator might type, or a dead letter's
// Dlq-Subject might name, that would act on NATS or on jetwatch instead of
// reaching a service.
var hostileTargets = []string{
	"$JS.API.STREAM.DELETE.ORDERS",
	"$JS.API.STREAM.PURGE.DLQ",
	"$JS.API.STREAM.MSG.DELETE.JETWATCH_DLQ_ACTIONS",
	"$KV.jetwatch_tokens.forged",
	"$SYS.REQ.SERVER.PING",
	"_INBOX.abc.def",
	dlq.ActionSubjectPrefix + "1",
	"jetwatch.audit.forged",
	"dlq.ORDERS.billing",
	"kvlike.secret",   // captured by KV_custom
	"records.audit.x", // captured by JETWATCH_RECORDS
	strings.Repeat("a", 5000),
	"orders.\x00created",
	"orders.created\r\nPUB orders.x 1",
	"orders..created",
	"orders.*",
}

// snapshot counts the messages of every stream, to show nothing changed.
func (b *bundle) snapshot(t *testing.T) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for name := range b.js.StreamNames(b.ctx).Name() {
		s, err := b.js.Stream(b.ctx, name)
		require.NoError(t, err)
		out[name] = s.CachedInfo().State.Msgs
	}
	return out
}

func TestRedeliveryTargetPolicyRefusesWhatIsNotAService(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, sc := range []jetstream.StreamConfig{
		{Name: "KV_custom", Subjects: []string{"kvlike.>"}},
		{Name: "JETWATCH_RECORDS", Subjects: []string{"records.>"}},
	} {
		_, err := b.js.CreateStream(b.ctx, sc)
		require.NoError(t, err)
	}
	kv, err := b.js.CreateKeyValue(b.ctx, jetstream.KeyValueConfig{Bucket: "jetwatch_tokens"})
	require.NoError(t, err)
	_, err = kv.PutString(b.ctx, "real", "token")
	require.NoError(t, err)
	id := b.deadLetter(t, `{"seq":1}`, false)
	before := b.snapshot(t)

	for _, subject := range hostileTargets {
		_, err := b.r.Redeliver(b.ctx, Request{ID: id, Actor: "mallory", Subject: subject})
		require.Error(t, err, "%.60q", subject)
		require.True(t, errors.Is(err, ErrTargetRefused) || errors.Is(err, ErrBadSubject), "%.60q: %v", subject, err)
		require.Less(t, len(err.Error()), 400, "the message clips what it quotes")
		_, err = b.r.Redeliver(b.ctx, Request{ID: id, Actor: "mallory", Subject: subject, Payload: []byte(`{"seq":1}`), Headers: map[string][]string{}})
		require.Error(t, err, "edited, %.60q", subject)
	}
	require.Equal(t, before, b.snapshot(t), "no stream changed")
	require.True(t, b.r.js.Conn().IsConnected())
	d, err := b.q.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, d.Status)
	keys, err := kv.Keys(b.ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"real"}, keys)

	// A dead letter whose own origin says $JS.API...: an ordinary
	// redelivery refuses it, one at a time and in bulk, and the good one
	// beside it in the batch still goes.
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{}`)
	dlq.Envelope{Stream: "ORDERS", Subject: "$JS.API.STREAM.DELETE.ORDERS", Sequence: 9, Consumer: "billing", Reason: dlq.ReasonMaxDeliver, FailedAt: time.Now()}.Apply(m.Header)
	ack, err := b.js.PublishMsg(b.ctx, m)
	require.NoError(t, err)
	require.NoError(t, b.ix.CatchUp(b.ctx))
	_, err = b.r.Redeliver(b.ctx, Request{ID: ack.Sequence, Actor: "ann"})
	require.ErrorIs(t, err, ErrTargetRefused)
	errs := b.r.ActMany(b.ctx, dlq.ActionRedeliver, []uint64{ack.Sequence, id}, "ann", "", "")
	require.ErrorIs(t, errs[0], ErrTargetRefused)
	require.NoError(t, errs[1])
	_, err = b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err, "ORDERS still exists")
	require.Equal(t, uint64(1), b.ordersCount(t), "only the good one was sent")
}

func TestRedeliverSubjectsNarrowTheTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.js.CreateStream(b.ctx, jetstream.StreamConfig{Name: "PAYMENTS", Subjects: []string{"payments.>"}})
	require.NoError(t, err)
	r, err := New(b.r.js.Conn(), b.db, Config{Policy: TargetPolicy{Subjects: []string{"orders.*"}}})
	require.NoError(t, err)
	id := b.deadLetter(t, "x", false)
	_, err = r.Redeliver(b.ctx, Request{ID: id, Actor: "ann", Subject: "payments.refund"})
	require.ErrorIs(t, err, ErrTargetRefused)
	require.Contains(t, err.Error(), "--redeliver-subjects orders.*")
	_, err = r.Redeliver(b.ctx, Request{ID: id, Actor: "ann", Subject: "orders.created.eu"})
	require.ErrorIs(t, err, ErrTargetRefused, "* is one token")
	a, err := r.Redeliver(b.ctx, Request{ID: id, Actor: "ann"})
	require.NoError(t, err)
	require.Equal(t, "ORDERS", a.AckStream)

	_, err = New(b.r.js.Conn(), b.db, Config{Policy: TargetPolicy{Subjects: []string{"orders.>.x"}}})
	require.Error(t, err, "a bad pattern is refused at start")
}

func TestRedeliveryDropsServerHeadersAndRefusesBadOnes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.deadLetter(t, `{"a":1}`, false)
	for _, h := range []map[string][]string{
		{"Bad Name": {"x"}},
		{"Colon:Name": {"x"}},
		{"X-Ok": {"a\r\nNats-Rollup: all"}},
		{"X-Ok": {"a\x00"}},
		{"": {"x"}},
	} {
		_, err := b.r.Redeliver(b.ctx, Request{ID: id, Actor: "ann", Payload: []byte("{}"), Headers: h})
		require.ErrorIs(t, err, ErrBadHeader, "%q", h)
	}
	require.Zero(t, b.ordersCount(t))

	a, err := b.r.Redeliver(b.ctx, Request{ID: id, Actor: "ann", Payload: []byte(`{"a":2}`), Headers: map[string][]string{
		"nats-expected-stream": {"DLQ"}, "NATS-ROLLUP": {"all"}, "Nats-Msg-Id": {"forged"}, "nats-TTL": {"1s"},
		"dlq-subject": {"x"}, "X-Fine": {"yes"},
	}})
	require.NoError(t, err)
	s, err := b.js.Stream(b.ctx, "ORDERS")
	require.NoError(t, err)
	got, err := s.GetMsg(b.ctx, a.AckSeq)
	require.NoError(t, err)
	require.Equal(t, "yes", got.Header.Get("X-Fine"))
	for k := range got.Header {
		if strings.EqualFold(k, jetstream.MsgIDHeader) {
			require.True(t, strings.HasPrefix(got.Header.Get(k), "jetwatch-redeliver:"), "only jetwatch's own message id")
			continue
		}
		require.False(t, strings.HasPrefix(strings.ToLower(k), "nats-") || strings.HasPrefix(strings.ToLower(k), "dlq-"), "header %s was sent", k)
	}
}

func TestTargetPolicyWithoutAServer(t *testing.T) {
	t.Parallel()
	p := TargetPolicy{Subjects: []string{"orders.>", "payments.*.eu"}}
	require.NoError(t, p.Validate())
	for _, s := range []string{"orders.created", "orders.a.b", "payments.card.eu"} {
		require.NoError(t, p.checkSubject(s), s)
	}
	for _, s := range []string{"orders", "payments.card.us", "payments.eu", "$JS.API.INFO", "_INBOX.x", "jetwatch.x", "dlq.A.b"} {
		require.ErrorIs(t, p.checkSubject(s), ErrTargetRefused, s)
	}
	for _, name := range []string{"KV_tokens", "OBJ_files", "JETWATCH_AUDIT", "MYDLQ"} {
		require.True(t, ReservedStream(name, "MYDLQ"), name)
	}
	require.False(t, ReservedStream("ORDERS", "MYDLQ"))
}
