package dlq

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 12, 0, 0, 123, time.UTC)
	in := Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: 42, Consumer: "billing", Deliveries: 5,
		Reason: ReasonMaxDeliver, Error: "card declined\nretry later", FailedAt: at, Service: "billing-svc"}
	h := nats.Header{}
	h.Set("Dlq-Old", "gone")
	h.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	in.Apply(h)
	require.Empty(t, h.Get("Dlq-Old"), "stale envelope headers are replaced")
	require.NotEmpty(t, h.Get("traceparent"))

	out := Decode(Subject("ORDERS", "billing"), h, time.Now())
	require.Empty(t, out.Problems)
	require.Equal(t, "card declined retry later", out.Error, "a header value stays on one line")
	out.Error = in.Error
	out.Problems = nil
	require.Equal(t, in, out)
}

func TestDecodeInfersWhatGarbageHeadersHide(t *testing.T) {
	t.Parallel()
	published := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := Decode("dlq.PAYMENTS.processor", nats.Header{}, published)
	require.Equal(t, "PAYMENTS", e.Stream)
	require.Equal(t, "processor", e.Consumer)
	require.Equal(t, ReasonError, e.Reason)
	require.Equal(t, published, e.FailedAt)
	require.Len(t, e.Problems, 1)

	h := nats.Header{}
	h.Set(HeaderStream, "S")
	h.Set(HeaderSequence, "twelve")
	h.Set(HeaderDeliveries, "-1")
	h.Set(HeaderReason, "exploded")
	h.Set(HeaderFailedAt, "yesterday")
	h.Set(HeaderError, "bad \xff byte")
	e = Decode("dlq.S.c", h, published)
	require.Equal(t, uint64(0), e.Sequence)
	require.Equal(t, ReasonError, e.Reason)
	require.Equal(t, published, e.FailedAt)
	require.Len(t, e.Problems, 5)
	require.True(t, utf8.ValidString(e.Error))
}

func FuzzDecode(f *testing.F) {
	f.Add("dlq.S.c", "S", "12", "3", "max_deliver", "2026-11-26T12:00:00Z", "boom")
	f.Add("orders", "", "x", "", "", "", "\xff\xfe")
	f.Add("dlq..", "a.b", "18446744073709551616", "1", "TERMINATED", "2026-13-40T99:00:00Z", strings.Repeat("e", 70000))
	f.Fuzz(func(t *testing.T, subject, stream, seq, deliveries, reason, failedAt, errText string) {
		h := nats.Header{}
		h.Set(HeaderStream, stream)
		h.Set(HeaderSequence, seq)
		h.Set(HeaderDeliveries, deliveries)
		h.Set(HeaderReason, reason)
		h.Set(HeaderFailedAt, failedAt)
		h.Set(HeaderError, errText)
		e := Decode(subject, h, time.Unix(0, 0))
		switch e.Reason {
		case ReasonMaxDeliver, ReasonTerminated, ReasonError:
		default:
			t.Fatalf("reason %q is not one of the three", e.Reason)
		}
		for _, s := range []string{e.Stream, e.Consumer, e.Subject, e.Error, e.Service} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 survived decoding: %q", s)
			}
		}
		// Whatever was decoded can be written back and read again.
		out := nats.Header{}
		e.Apply(out)
		again := Decode(subject, out, time.Unix(0, 0))
		if again.Reason != e.Reason || again.Sequence != e.Sequence || again.Stream != e.Stream {
			t.Fatalf("round trip changed the envelope: %+v -> %+v", e, again)
		}
	})
}

func TestDecodeKeepsNumbersWithinWhatTheIndexStores(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in       string
		want     uint64
		problems int
	}{
		{"9223372036854775807", 9223372036854775807, 0},
		{" 12 ", 12, 0},
		{"9223372036854775808", 9223372036854775807, 1},
		{"18446744073709551615", 9223372036854775807, 1},
		{"18446744073709551616", 9223372036854775807, 1}, // past uint64 too
		{"-1", 0, 1},
		{"0x10", 0, 1},
	} {
		h := nats.Header{}
		h.Set(HeaderStream, "S")
		h.Set(HeaderDeliveries, c.in)
		e := Decode("dlq.S.c", h, time.Now())
		require.Equal(t, c.want, e.Deliveries, c.in)
		require.Len(t, e.Problems, c.problems, c.in)
	}
}

func TestDecodeBelievesFailureTimesBetween1970And9999(t *testing.T) {
	t.Parallel()
	published := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1970-01-01T00:00:00Z":      time.Unix(0, 0).UTC(),
		"9999-12-31T23:59:59Z":      time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		"2026-01-02T04:04:05+01:00": published,
		"9999-12-31T23:59:59-23:59": published, // year 10000 in UTC
		"0000-01-01T00:00:00+23:59": published, // year -1 in UTC
		"1969-12-31T23:59:59Z":      published,
		"99999-01-01T00:00:00Z":     published,
	} {
		h := nats.Header{}
		h.Set(HeaderStream, "S")
		h.Set(HeaderFailedAt, in)
		e := Decode("dlq.S.c", h, published)
		require.Equal(t, want, e.FailedAt, in)
		if want.Equal(published) && in != "2026-01-02T04:04:05+01:00" {
			require.Len(t, e.Problems, 1, in)
		}
	}
}

// BenchmarkDecode decodes a typical dead letter's envelope, which the index
// does for every message it reads.
//
//	go test -tags sqlite_fts5 -run xxx -bench 'Decode$' -benchmem ./dlq
func BenchmarkDecode(b *testing.B) {
	h := nats.Header{}
	h.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	Envelope{Stream: "ORDERS", Subject: "orders.created.eu", Sequence: 123456, Consumer: "billing", Deliveries: 5,
		Reason: ReasonMaxDeliver, Error: "timeout after 300 ms calling 10.0.0.7:8080", FailedAt: time.Now(), Service: "billing-svc"}.Apply(h)
	now := time.Now()
	for b.Loop() {
		Decode("dlq.ORDERS.billing", h, now)
	}
}
