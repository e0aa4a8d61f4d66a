package collector

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

func TestDecodeDeliveryAdvisoryTakesWhatTheServerSends(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC)
	a, rej := decodeDeliveryAdvisory([]byte(`{"type":"io.nats.jetstream.advisory.v1.terminated","id":"Qx","timestamp":"2026-11-26T12:00:00Z",
		"stream":"ORDERS","consumer":"billing","consumer_seq":4,"stream_seq":7,"deliveries":3,"reason":"bad schema","domain":"hub"}`), received)
	require.Nil(t, rej)
	require.Equal(t, deliveryAdvisory{Type: typeTerminated, ID: "Qx", Time: received.Add(-time.Second), Stream: "ORDERS",
		Consumer: "billing", StreamSeq: 7, Deliveries: 3, Reason: "bad schema"}, a)

	// A time from the future, or none, is the capture time.
	a, rej = decodeDeliveryAdvisory([]byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","timestamp":"2099-01-01T00:00:00Z",
		"stream":"ORDERS","consumer":"billing","stream_seq":7,"deliveries":3}`), received)
	require.Nil(t, rej)
	require.Equal(t, received, a.Time)
	a, rej = decodeDeliveryAdvisory([]byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"ORDERS","consumer":"billing","stream_seq":7,"deliveries":3}`), received)
	require.Nil(t, rej)
	require.Equal(t, received, a.Time)
}

func TestClipKeepsUntrustedValuesShortAndPrintable(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ORDERS", clip("ORDERS"))
	long := clip(strings.Repeat("é", 5000))
	require.Equal(t, strings.Repeat("é", maxClip)+"… (10000 bytes)", long)
	require.Equal(t, "a\uFFFDb\uFFFDc\uFFFDd", clip("a\x00b\xffc\u202ed"))
	require.True(t, utf8.ValidString(clip("\xff\xfe")))
}

func TestStreamPatterns(t *testing.T) {
	t.Parallel()
	all, err := ParseStreamPatterns(nil)
	require.NoError(t, err)
	require.True(t, all.Match("ANYTHING"))

	p, err := ParseStreamPatterns([]string{"ORDERS", "PAY*", "*_EU", "a*b*c"})
	require.NoError(t, err)
	for stream, want := range map[string]bool{
		"ORDERS": true, "ORDERS2": false, "XORDERS": false,
		"PAY": true, "PAYMENTS": true, "PA": false, "XPAY": false,
		"BILLING_EU": true, "_EU": true, "BILLING_US": false,
		"abc": true, "aXbYc": true, "abbc": true, "ab": false, "acb": false,
	} {
		require.Equal(t, want, p.Match(stream), stream)
	}
	require.Equal(t, "ORDERS,PAY*,*_EU,a*b*c", p.String())

	for _, bad := range []string{"PAY.*", "ORDERS PAY", "", "PAY>", "a/b", strings.Repeat("A", 300)} {
		_, err := ParseStreamPatterns([]string{"ORDERS", bad})
		require.ErrorIs(t, err, ErrBadStreamPattern, "%q", bad)
		require.ErrorIs(t, err, natsname.ErrInvalid, "%q", bad)
		require.ErrorContains(t, err, "like ORDERS,PAY*", "%q", bad)
	}
}

func TestProtectedStreams(t *testing.T) {
	t.Parallel()
	c := StreamsConfig{Advisories: "ADV", DLQ: "DEAD", Actions: "ACTS"}.withDefaults()
	for _, s := range []string{"ADV", "DEAD", "ACTS", "JETWATCH_AUDIT", "JETWATCH_ALERTS_OUTBOX", "KV_jetwatch_tokens", "KV_orders", "OBJ_files"} {
		require.True(t, c.protected(s), s)
	}
	for _, s := range []string{"ORDERS", "DLQ2", "kv_lower", "MY_KV_"} {
		require.False(t, c.protected(s), s)
	}
}

// FuzzBridgeAdvisory feeds arbitrary bytes to the advisory decoder and the
// bridge's policy: nothing panics, and whatever passes carries names the
// server accepts and numbers that fit an SQLite integer; every refusal has
// a known reason and a short detail.
func FuzzBridgeAdvisory(f *testing.F) {
	for _, seed := range []string{
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2026-11-26T12:00:00Z","stream":"ORDERS","consumer":"billing","stream_seq":1,"deliveries":5}`,
		`{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"PAYMENTS","consumer":"c","stream_seq":9,"deliveries":1,"reason":"Message deleted by stream limits"}`,
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"KV_jetwatch_tokens","consumer":"c","stream_seq":1,"deliveries":1}`,
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"` + strings.Repeat("A", 5000) + `","consumer":"c","stream_seq":1,"deliveries":1}`,
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"S","consumer":"a\u0000b","stream_seq":18446744073709551615,"deliveries":1}`,
		`{"stream":1}`, `null`, `[]`, `{`, "",
	} {
		f.Add([]byte(seed))
	}
	b := &Bridge{cfg: BridgeConfig{Streams: StreamsConfig{}.withDefaults()}}
	received := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, rej := decodeDeliveryAdvisory(data, received)
		if rej == nil {
			rej = b.policy(a)
		}
		if rej != nil {
			require.Contains(t, rejectReasons, rej.reason)
			require.Less(t, len(rej.detail), 1024, "a rejection's detail is clipped")
			require.True(t, utf8.ValidString(rej.detail))
			return
		}
		require.NoError(t, natsname.Name(a.Stream))
		require.NoError(t, natsname.Name(a.Consumer))
		require.NoError(t, natsname.Subject("$JS.API.CONSUMER.INFO."+a.Stream+"."+a.Consumer))
		require.NoError(t, natsname.Subject("$JS.API.STREAM.MSG.GET."+a.Stream))
		require.Contains(t, []string{typeMaxDeliver, typeTerminated}, a.Type)
		require.Positive(t, a.StreamSeq)
		require.LessOrEqual(t, a.StreamSeq, uint64(math.MaxInt64))
		require.Positive(t, a.Deliveries)
		require.LessOrEqual(t, a.Deliveries, uint64(math.MaxInt64))
		require.False(t, b.cfg.Streams.protected(a.Stream))
		require.False(t, a.Time.After(received.Add(time.Minute)))
	})
}

func TestRejectionReplacesTheTimelinesEntryWhicheverComesFirst(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	jw := natstest.Connect(t, b.srv, nats.Name("jetwatch"))
	bridge := startBridge(t, b, BridgeConfig{})
	forge := newForger(t, b)
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)

	// The bridge rejects the first before the timeline runs; the timeline
	// stores the second before the bridge sees it.
	first := forge.advisory(map[string]any{"stream": "ORDERS", "consumer": "nobody", "stream_seq": 5})
	waitAcked(t, b, first)
	bridge.Stop()
	second := forge.advisory(map[string]any{"stream": "ORDERS", "consumer": "nobody", "stream_seq": 6})
	tl, err := NewTimeline(jw, b.db, TimelineConfig{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, tl.Start(ctx))
	t.Cleanup(tl.Stop)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		events, err := b.db.Events(ctx, store.EventFilter{Stream: "ORDERS", Kind: "max_deliver"})
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return errors.New("the timeline has not stored the second advisory yet")
		}
		return nil
	})
	startBridge(t, b, BridgeConfig{})
	waitAcked(t, b, second)

	events, err := b.db.Events(ctx, store.EventFilter{Stream: "ORDERS"})
	require.NoError(t, err)
	kinds := map[uint64]string{}
	for _, e := range events {
		if e.ID == first || e.ID == second {
			kinds[e.ID] = e.Kind
		}
	}
	require.Equal(t, map[uint64]string{first: EventAdvisoryRejected, second: EventAdvisoryRejected}, kinds)
}
