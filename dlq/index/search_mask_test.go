package index

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/redact"
	"github.com/jetwatch/jetwatch/internal/logtest"
	"github.com/jetwatch/jetwatch/internal/seriescap"
	"github.com/jetwatch/jetwatch/store"
)

// TestSearchCannotFindMaskedValues: with payload fields masked, full-text
// search indexes the masked payload, so a search cannot find (and so
// confirm) a card number no page shows, while the rest stays searchable.
// An index built with other masks says to reindex until it is, and a
// reset records the masks it is rebuilt with.
func TestSearchCannotFindMaskedValues(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	r, err := redact.New(nil, []string{"card.number", "CVC"})
	require.NoError(t, err)
	require.Equal(t, "card.number,cvc", r.Fields())
	masked := func(p []byte) []byte {
		out, _ := r.Payload(p)
		return out
	}
	logger, logs := logtest.New()

	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":"ord-1","card":{"number":"4111111111111111","cvc":"737"},"note":"fragile parcel"}`)
	dlq.Envelope{Stream: "ORDERS", Subject: "orders.created", Sequence: 3, Consumer: "billing", Deliveries: 5,
		Reason: dlq.ReasonMaxDeliver, Error: "card declined", FailedAt: time.Now()}.Apply(m.Header)
	seq := b.publish(t, m)
	ix, _ := b.start(t, Config{SearchText: masked, SearchMasks: r.Fields(), Logger: logger})
	b.waitIndexed(t, seq)
	count := func(q string) int {
		n, err := b.db.CountDeadLetters(b.ctx, store.DeadLetterFilter{Q: q})
		require.NoError(t, err)
		return n
	}
	require.Zero(t, count("4111111111111111"), "a masked value is not found")
	require.Zero(t, count("737"))
	require.Equal(t, 1, count("fragile"), "the rest of the payload is")
	require.Equal(t, 1, count("declined"))
	require.Equal(t, 1, count("redacted"), "search sees what pages show")
	require.NotContains(t, logs.String(), "reindex")
	ix.Stop()

	// Started without masks over what was indexed with them: a warning
	// (search would now miss what pages show), and again at every start
	// until a reset.
	ix, _ = b.start(t, Config{Logger: logger})
	require.Contains(t, logs.String(), "full-text search still holds dead letters indexed with other masked fields")
	require.Contains(t, logs.String(), "indexed_with=card.number,cvc configured=(none)")
	ix.Stop()
	require.NoError(t, ix.Reset(b.ctx))
	logs.Reset()
	ix, _ = b.start(t, Config{Logger: logger})
	b.waitIndexed(t, seq)
	require.NotContains(t, logs.String(), "reindex")
	require.Equal(t, 1, count("4111111111111111"), "rebuilt without masks, search finds it again")
	ix.Stop()
}

// TestIndexedSeriesAreCapped: the stream and consumer labels of
// jetwatch_dead_letters_indexed_total are what services put in the
// envelope; names NATS could not have given, and pairs past the cap,
// are counted together, so a service minting a name per dead letter
// cannot grow /metrics without end.
func TestIndexedSeriesAreCapped(t *testing.T) {
	t.Parallel()
	b := setupIndex(t)
	reg := prometheus.NewRegistry()
	ix, err := New(b.nc, b.db, Config{Registerer: reg})
	require.NoError(t, err)
	ix.series = seriescap.New(2)
	publish := func(pairs ...[2]string) uint64 {
		var last uint64
		for _, names := range pairs {
			m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
			m.Data = []byte("x")
			dlq.Envelope{Stream: names[0], Subject: "orders.created", Sequence: 3, Consumer: names[1], Deliveries: 5,
				Reason: dlq.ReasonMaxDeliver, Error: "boom", FailedAt: time.Now()}.Apply(m.Header)
			last = b.publish(t, m)
		}
		return last
	}
	require.NoError(t, ix.Start(b.ctx))
	t.Cleanup(ix.Stop)
	// The first pairs take the series; those after them are counted
	// together.
	b.waitIndexed(t, publish([2]string{"ORDERS", "billing"}, [2]string{"ORDERS", "billing"}, [2]string{"PAYMENTS", "refunds"}))
	b.waitIndexed(t, publish([2]string{"S3", "c3"}, [2]string{"S4", "c4"}, [2]string{"bad name", "c"}))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "jetwatch_dead_letters_indexed_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["stream"]+"/"+l["consumer"]] += m.GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{"ORDERS/billing": 2, "PAYMENTS/refunds": 1, "(other)/(other)": 3}, got)
}
