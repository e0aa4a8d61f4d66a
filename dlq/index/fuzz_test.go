package index

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/internal/seriescap"
	"github.com/jetwatch/jetwatch/store"
)

// FuzzIndexEnvelope feeds arbitrary subjects, envelope headers and
// payloads through dlq.Decode and the row building the index uses, and stores
// each row in a real SQLite file: no panic, every row fits the schema,
// SQLite takes it, and it reads back into something the API can answer.
func FuzzIndexEnvelope(f *testing.F) {
	f.Add("dlq.ORDERS.billing", "ORDERS", "orders.created", "42", "5", "max_deliver", "card declined", "2026-11-26T12:00:00Z", "svc", "", "X-Other", "v", []byte(`{"a":1}`))
	f.Add("dlq.ORDERS.billing", "ORDERS", "orders.created", "18446744073709551615", "18446744073709551615", "terminated", "e", "99999-01-01T00:00:00Z", "", "", "", "", []byte(nil))
	f.Add("dlq..", "OR\xffDERS", "orders.\xff", "99999999999999999999999", "-1", "\xff", "bad \xff\xfe", "9999-12-31T23:59:59-23:59", "svc\xc3", "gone \xff", "Dlq-Stream", "x", []byte{0xff, 0})
	f.Add("dlq.S.c", "S\x00", "orders.\x00", " 7 ", "+3", "ERROR", "a\x00b", "0000-01-01T00:00:00+23:59", "\x00", "\x00", "Nats-Msg-Id", "\x00", []byte("\x00text"))
	f.Add("orders", strings.Repeat("s", 300), "orders."+strings.Repeat("x", 2000), "", "", "", strings.Repeat("e", 60<<10), "1969-12-31T23:59:59Z", strings.Repeat("v", 300), strings.Repeat("u", 5000), "X-Big", strings.Repeat("b", 60<<10), []byte(strings.Repeat("p", 70<<10)))
	f.Add("dlq.S.c", "S", "orders.*", "0", "0", "max_deliver", "\"quoted 'value\" 123", "2026-01-02T03:04:05.123456789+01:00", "", "", "", "", []byte("ü"))

	ctx := context.Background()
	db, err := store.OpenFile(ctx, filepath.Join(f.TempDir(), "jetwatch.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	// The index's write path without a NATS connection: ingest needs the
	// database, the counters and a logger only.
	ix := &Index{db: db, cfg: Config{Stream: "DLQ", Batch: 1}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		indexed:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "indexed"}, []string{"stream", "consumer", "reason"}),
		unindexable: prometheus.NewCounter(prometheus.CounterOpts{Name: "unindexable"}),
		series:      seriescap.New(maxIndexedSeries),
	}
	q := query.New(db, nil, "DLQ")
	published := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var seq uint64

	f.Fuzz(func(t *testing.T, subject, stream, origSubject, sequence, deliveries, reason, errText, failedAt, service, unavailable, otherName, otherValue string, payload []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{dlq.HeaderStream: stream, dlq.HeaderSubject: origSubject, dlq.HeaderSequence: sequence,
			dlq.HeaderDeliveries: deliveries, dlq.HeaderReason: reason, dlq.HeaderError: errText, dlq.HeaderFailedAt: failedAt,
			dlq.HeaderService: service, dlq.HeaderPayloadUnavailable: unavailable, dlq.HeaderConsumer: stream + service} {
			h[k] = []string{v}
		}
		h[otherName] = append(h[otherName], otherValue)
		seq++
		r := newIndexRow(seq, subject, h, published, payload)
		if err := rowFits(r); err != "" {
			t.Fatalf("row does not fit the index: %s\n%+v", err, r.env)
		}
		if err := ix.store(ctx, []indexRow{r}); err != nil {
			t.Fatalf("storing the row failed: %v\n%+v", err, r.env)
		}
		var skipped int
		if err := db.SQLForTests().QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters_unindexable`).Scan(&skipped); err != nil {
			t.Fatal(err)
		}
		if skipped != 0 {
			t.Fatalf("SQLite refused a row that fits: %+v", r.env)
		}
		rows, err := q.GetManyIndexed(ctx, []uint64{seq})
		if err != nil {
			t.Fatalf("reading the row back: %v", err)
		}
		d, ok := rows[seq]
		if !ok {
			t.Fatalf("row %d not stored", seq)
		}
		if _, err := json.Marshal(d); err != nil {
			t.Fatalf("the API could not answer it: %v", err)
		}
		if d.Deliveries != r.env.Deliveries || d.StreamSeq != r.env.Sequence || d.Error != r.env.Error || d.DLQSubject != subject {
			t.Fatalf("stored %+v, meant %+v", d, r.env)
		}
	})
}

// rowFits says what in r the index would refuse or should not hold, "" when
// nothing.
func rowFits(r indexRow) string {
	e := r.env
	switch {
	case r.ID > math.MaxInt64 || e.Sequence > math.MaxInt64 || e.Deliveries > math.MaxInt64:
		return "an integer above MaxInt64"
	case e.FailedAt.Year() < 1970 || e.FailedAt.Year() > 9999:
		return "failure time outside 1970-9999: " + e.FailedAt.String()
	case e.Reason != dlq.ReasonMaxDeliver && e.Reason != dlq.ReasonTerminated && e.Reason != dlq.ReasonError:
		return "unknown reason " + e.Reason
	case e.Subject != "" && natsname.Subject(e.Subject) != nil:
		return "an original subject nothing can be published to: " + e.Subject
	case len(r.SearchText) > maxIndexedText || !utf8.ValidString(r.SearchText):
		return "search text too long or not UTF-8"
	case !json.Valid([]byte(r.Problems)):
		return "problems are not JSON"
	}
	for _, c := range []struct {
		name, v string
		limit   int
	}{
		{"stream", e.Stream, natsname.MaxNameLen}, {"consumer", e.Consumer, natsname.MaxNameLen}, {"service", e.Service, natsname.MaxNameLen},
		{"subject", e.Subject, natsname.MaxSubjectLen}, {"error", e.Error, deadletter.MaxErrorLen},
		{"payload unavailable", e.PayloadUnavailable, deadletter.MaxErrorLen}, {"fingerprint", r.Fingerprint, deadletter.MaxErrorLen},
	} {
		switch {
		case !utf8.ValidString(c.v):
			return c.name + " is not UTF-8"
		case strings.IndexByte(c.v, 0) >= 0:
			return c.name + " holds NUL"
		case len(c.v) > c.limit+len("…"):
			return c.name + " is too long"
		}
	}
	return ""
}
