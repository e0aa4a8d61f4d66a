package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// forger publishes advisories as any client in the account can.
type forger struct {
	t  *testing.T
	js jetstream.JetStream
}

func newForger(t *testing.T, b *testBundle) forger {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, b.srv, nats.Name("forger")))
	require.NoError(t, err)
	return forger{t: t, js: js}
}

// raw publishes data as a max_deliver advisory and answers its sequence
// in the capture stream.
func (f forger) raw(data []byte) uint64 {
	f.t.Helper()
	ack, err := f.js.Publish(context.Background(), "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.FORGED.x", data)
	require.NoError(f.t, err)
	require.Equal(f.t, DefaultAdvisoryStream, ack.Stream)
	return ack.Sequence
}

// advisory publishes a delivery advisory with the given fields over
// plausible defaults.
func (f forger) advisory(fields map[string]any) uint64 {
	f.t.Helper()
	body := map[string]any{"type": typeMaxDeliver, "id": "forged", "timestamp": time.Now().UTC(), "deliveries": 2}
	for k, v := range fields {
		body[k] = v
	}
	data, err := json.Marshal(body)
	require.NoError(f.t, err)
	return f.raw(data)
}

// waitAcked waits until the bridge has settled every advisory up to seq
// in the capture stream.
func waitAcked(t *testing.T, b *testBundle, seq uint64) {
	t.Helper()
	ctx := context.Background()
	cons, err := b.js.Consumer(ctx, DefaultAdvisoryStream, DefaultBridgeDurable)
	require.NoError(t, err)
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq {
			return fmt.Errorf("bridge acked up to #%d of the capture stream, want #%d", info.AckFloor.Stream, seq)
		}
		return nil
	})
}

func dlqCount(t *testing.T, b *testBundle) uint64 {
	t.Helper()
	s, err := b.js.Stream(context.Background(), DefaultDLQStream)
	require.NoError(t, err)
	return s.CachedInfo().State.Msgs
}

func rejectedCount(t *testing.T, bridge *Bridge, reason string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, bridge.rejected.WithLabelValues(reason).(prometheus.Metric).Write(&m))
	return m.GetCounter().GetValue()
}

func rejectionEvents(t *testing.T, b *testBundle) map[uint64]store.Event {
	t.Helper()
	events, err := b.db.Events(context.Background(), store.EventFilter{Kind: EventAdvisoryRejected, Limit: 1000})
	require.NoError(t, err)
	out := map[uint64]store.Event{}
	for _, e := range events {
		out[e.ID] = e
	}
	return out
}

// deliverUnacked has cons deliver its next message and leaves it unacked,
// so the consumer has delivered it and will redeliver it later.
func deliverUnacked(t *testing.T, cons jetstream.Consumer) {
	t.Helper()
	fail(t, cons, func(jetstream.Msg) error { return nil })
}

func TestBridgeRejectsAdvisoriesTheConsumerRefutes(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	bridge, _ := startDeadLetterDesk(t, b)
	forge := newForger(t, b)

	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAYMENTS", Subjects: []string{"payments.>"}})
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "payments.card", []byte(`{"pan":"4111111111111111"}`)) // #1
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "payments.meta.created", []byte(`{}`)) // #2
	require.NoError(t, err)
	// billing never fetched anything; meta delivered #2 only (its filter
	// passes #1 by); tally delivered #1 and #2 and gives up after 5.
	_, err = b.js.CreateOrUpdateConsumer(ctx, "PAYMENTS", jetstream.ConsumerConfig{Durable: "billing",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2})
	require.NoError(t, err)
	meta, err := b.js.CreateOrUpdateConsumer(ctx, "PAYMENTS", jetstream.ConsumerConfig{Durable: "meta",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, FilterSubject: "payments.meta.>", AckWait: time.Hour})
	require.NoError(t, err)
	deliverUnacked(t, meta)
	tally, err := b.js.CreateOrUpdateConsumer(ctx, "PAYMENTS", jetstream.ConsumerConfig{Durable: "tally",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 5, AckWait: time.Hour})
	require.NoError(t, err)
	deliverUnacked(t, tally)
	deliverUnacked(t, tally)
	watcher, err := b.js.CreateOrUpdateConsumer(ctx, "PAYMENTS", jetstream.ConsumerConfig{Durable: "watcher", AckPolicy: jetstream.AckNonePolicy})
	require.NoError(t, err)
	deliverUnacked(t, watcher)

	cases := []struct {
		name   string
		fields map[string]any
		reason string
		says   string
	}{
		{"never delivered", map[string]any{"stream": "PAYMENTS", "consumer": "billing", "stream_seq": 1}, rejectNotDelivered, "has delivered only up to #0"},
		{"outside the filter", map[string]any{"stream": "PAYMENTS", "consumer": "meta", "stream_seq": 1}, rejectNotDelivered, "outside consumer meta's filter payments.meta.>"},
		{"too few deliveries", map[string]any{"stream": "PAYMENTS", "consumer": "tally", "stream_seq": 1, "deliveries": 2}, rejectDeliveriesMismatch, "allows up to 5 deliveries"},
		{"terminated, never delivered", map[string]any{"type": typeTerminated, "stream": "PAYMENTS", "consumer": "billing", "stream_seq": 1, "reason": "x"}, rejectNotDelivered, "has delivered only up to #0"},
		{"no acks, no failures", map[string]any{"type": typeTerminated, "stream": "PAYMENTS", "consumer": "watcher", "stream_seq": 1}, rejectNotDelivered, "acknowledges nothing"},
		{"no consumer, past the stream's end", map[string]any{"stream": "PAYMENTS", "consumer": "ghost", "stream_seq": 99}, rejectNotDelivered, "holds nothing past #2"},
	}
	seqs := map[string]uint64{}
	var last uint64
	for _, c := range cases {
		seqs[c.name] = forge.advisory(c.fields)
		last = seqs[c.name]
	}
	waitAcked(t, b, last)

	require.Zero(t, dlqCount(t, b), "no forged advisory copied anything")
	require.Equal(t, 5.0, rejectedCount(t, bridge, rejectNotDelivered))
	require.Equal(t, 1.0, rejectedCount(t, bridge, rejectDeliveriesMismatch))
	events := rejectionEvents(t, b)
	for _, c := range cases {
		e, ok := events[seqs[c.name]]
		require.True(t, ok, "%s: an event for advisory #%d", c.name, seqs[c.name])
		require.Equal(t, "PAYMENTS", e.Stream, c.name)
		require.Equal(t, store.SeverityWarning, e.Severity, c.name)
		require.Contains(t, e.Summary, "advisory rejected ("+c.reason+")", c.name)
		require.Contains(t, e.Summary, c.says, c.name)
	}
	require.True(t, b.nc.IsConnected())
}

func TestBridgeNeverCopiesFromProtectedOrUncapturedStreams(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	capture, err := ParseStreamPatterns([]string{"ORDERS", "PAY*"})
	require.NoError(t, err)
	bridge := startBridge(t, b, BridgeConfig{CaptureStreams: capture})
	forge := newForger(t, b)

	// Each stream has a consumer that really delivered #1 and gives up
	// after one delivery, so only the policy stands between the claim and
	// a copy.
	kv, err := b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "jetwatch_tokens"})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "tok1", []byte(`{"hash":"secret"}`))
	require.NoError(t, err)
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "JETWATCH_AUDIT", Subjects: []string{"jetwatch.audit.>"}})
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "jetwatch.audit.login", []byte(`{"actor":"ada"}`))
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "dlq.ORDERS.billing", []byte(`an earlier dead letter`))
	require.NoError(t, err)
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "other.thing", []byte(`not to be captured`))
	require.NoError(t, err)
	for _, stream := range []string{"KV_jetwatch_tokens", "JETWATCH_AUDIT", DefaultDLQStream, "OTHER"} {
		cons, err := b.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "w",
			AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1, AckWait: time.Hour})
		require.NoError(t, err)
		deliverUnacked(t, cons)
	}
	before := dlqCount(t, b)
	require.Equal(t, uint64(1), before)

	seqs := map[string]uint64{}
	for _, stream := range []string{"KV_jetwatch_tokens", "JETWATCH_AUDIT", DefaultDLQStream, "OTHER"} {
		seqs[stream] = forge.advisory(map[string]any{"stream": stream, "consumer": "w", "stream_seq": 1, "deliveries": 1})
	}
	waitAcked(t, b, seqs["OTHER"])
	require.Equal(t, before, dlqCount(t, b), "nothing copied")
	require.Equal(t, 3.0, rejectedCount(t, bridge, rejectProtectedStream))
	require.Equal(t, 1.0, rejectedCount(t, bridge, rejectNotCaptured))
	events := rejectionEvents(t, b)
	for _, stream := range []string{"KV_jetwatch_tokens", "JETWATCH_AUDIT", DefaultDLQStream} {
		require.Contains(t, events[seqs[stream]].Summary, "advisory rejected (protected_stream)", stream)
	}
	require.NotContains(t, events, seqs["OTHER"], "leaving a stream out is the operator's choice, not news")

	// A real failure on a captured stream is still copied.
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAYMENTS", Subjects: []string{"payments.>"}})
	require.NoError(t, err)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "PAYMENTS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "payments.card", []byte(`declined`))
	require.NoError(t, err)
	fail(t, cons, func(m jetstream.Msg) error { return m.TermWithReason("declined") })
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := dlqCount(t, b); n != before+1 {
			return fmt.Errorf("DLQ holds %d messages, want %d", n, before+1)
		}
		return nil
	})
	dlqStream, err := b.js.Stream(ctx, DefaultDLQStream)
	require.NoError(t, err)
	got, err := dlqStream.GetLastMsgForSubject(ctx, "dlq.PAYMENTS.billing")
	require.NoError(t, err)
	require.Equal(t, []byte("declined"), got.Data)
}

func TestBridgeRejectsHostileNamesAndKeepsItsConnection(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	var logs syncBuffer
	bridge := startBridge(t, b, BridgeConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	ix, err := index.New(b.nc, b.db, index.Config{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, ix.Start(ctx))
	t.Cleanup(ix.Stop)
	forge := newForger(t, b)
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = b.js.Publish(ctx, "orders.created", []byte(`{"order_id":"ord-1"}`))
	require.NoError(t, err)

	long := strings.Repeat("A", 5000)
	seqs := map[string]uint64{
		"long stream":       forge.advisory(map[string]any{"stream": long, "consumer": "billing", "stream_seq": 1}),
		"space in consumer": forge.advisory(map[string]any{"stream": "ORDERS", "consumer": "bill ing", "stream_seq": 1}),
		"NUL in consumer":   forge.advisory(map[string]any{"stream": "ORDERS", "consumer": "bill\x00ing", "stream_seq": 1}),
		"dot in stream":     forge.advisory(map[string]any{"stream": "ORDERS.x", "consumer": "billing", "stream_seq": 1}),
		"seq beyond int64":  forge.raw([]byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"ORDERS","consumer":"billing","stream_seq":18446744073709551615,"deliveries":2}`)),
		"seq 0":             forge.advisory(map[string]any{"stream": "ORDERS", "consumer": "billing", "stream_seq": 0}),
		"negative seq":      forge.raw([]byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"ORDERS","consumer":"billing","stream_seq":-1}`)),
		"no deliveries":     forge.advisory(map[string]any{"stream": "ORDERS", "consumer": "billing", "stream_seq": 1, "deliveries": 0}),
		"other type":        forge.advisory(map[string]any{"type": "io.nats.jetstream.advisory.v1.stream_action", "stream": "ORDERS", "consumer": "billing", "stream_seq": 1}),
		"not JSON":          forge.raw([]byte("{\"stream\":\"" + long)),
	}
	var last uint64
	for _, s := range seqs {
		last = max(last, s)
	}
	waitAcked(t, b, last)

	require.True(t, bridge.nc.IsConnected(), "the connection is still up")
	require.Equal(t, 4.0, rejectedCount(t, bridge, rejectInvalidName))
	require.Equal(t, 6.0, rejectedCount(t, bridge, rejectMalformed))
	require.Zero(t, dlqCount(t, b))
	events := rejectionEvents(t, b)
	for name, seq := range seqs {
		e, ok := events[seq]
		require.True(t, ok, "%s: an event", name)
		require.Less(t, len(e.Summary), 600, "%s: summary clipped", name)
		require.Less(t, len(e.Stream), 300, "%s: stream clipped", name)
		require.NotContains(t, e.Consumer, "\x00", name)
	}
	require.Contains(t, events[seqs["long stream"]].Summary, "(5000 bytes)")
	require.Contains(t, events[seqs["long stream"]].Summary, "advisory rejected (invalid_name)")
	require.Contains(t, events[seqs["seq beyond int64"]].Summary, "advisory rejected (malformed)")
	require.NotContains(t, logs.String(), strings.Repeat("A", 100), "a 5,000-character value is never logged whole")
	require.Equal(t, len(seqs), strings.Count(logs.String(), "advisory rejected"), "each rejection logged once:\n%s", logs.String())

	// A real failure afterwards is still bridged: billing gives up after
	// two deliveries it never acked.
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, AckWait: 500 * time.Millisecond})
	require.NoError(t, err)
	deliverUnacked(t, cons)
	deliverUnacked(t, cons)
	// MAX_DELIVERIES fires when the server would deliver again: keep a
	// pull outstanding.
	_, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	rows := waitDeadLetters(t, b, 1)
	require.Equal(t, "ORDERS", rows[0].Stream)
	require.Equal(t, "billing", rows[0].Consumer)
	require.Equal(t, []byte(`{"order_id":"ord-1"}`), rows[0].Payload)
	require.True(t, bridge.nc.IsConnected())
}

func TestBridgeRecordsAFailureOfAGoneConsumerWithoutItsPayload(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	bridge, ix := startDeadLetterDesk(t, b)
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAY", Subjects: []string{"pay.>"}})
	require.NoError(t, err)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "PAY", jetstream.ConsumerConfig{Durable: "capture", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	// The consumer fails a message while jetwatch is down, and is gone
	// (an ephemeral one would be) by the time jetwatch is back.
	bridge.Stop()
	ix.Stop()
	_, err = b.js.Publish(ctx, "pay.card", []byte(`{"pan":"4111111111111111"}`))
	require.NoError(t, err)
	fail(t, cons, func(m jetstream.Msg) error { return m.TermWithReason("declined") })
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending > 0 {
			return fmt.Errorf("term not settled yet")
		}
		return nil
	})
	require.NoError(t, b.js.DeleteConsumer(ctx, "PAY", "capture"))

	bridge, _ = startDeadLetterDesk(t, b)
	rows := waitDeadLetters(t, b, 1)
	r := rows[0]
	require.Equal(t, "PAY", r.Stream)
	require.Equal(t, "capture", r.Consumer)
	require.Equal(t, dlq.ReasonTerminated, r.Reason)
	require.Equal(t, "declined", r.Error)
	require.False(t, r.PayloadAvailable, "an unverified advisory copies no payload")
	require.Empty(t, r.Payload)
	require.Contains(t, r.UnavailableWhy, "unverified: consumer capture is gone from stream PAY")
	require.Zero(t, rejectedCount(t, bridge, rejectNotDelivered))
}

// startBridge starts a bridge with cfg over the test defaults (events to
// the test's database).
func startBridge(t *testing.T, b *testBundle, cfg BridgeConfig) *Bridge {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	cfg.Events = b.db
	bridge, err := NewBridge(b.nc, cfg)
	require.NoError(t, err)
	require.NoError(t, bridge.Start(context.Background()))
	t.Cleanup(bridge.Stop)
	return bridge
}

// syncBuffer is a bytes.Buffer safe for the bridge's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
