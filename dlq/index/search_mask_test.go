package index

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/redact"
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
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

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

// lockedBuffer is a log the index writes from its goroutines while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}
