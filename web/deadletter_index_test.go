package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// publishLetter publishes a dead letter of ORDERS/billing with headers as
// given (an envelope or hostile ones) and returns its DLQ sequence.
func (d *deskBundle) publishLetter(t *testing.T, headers map[string]string) uint64 {
	t.Helper()
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":"ord-9"}`)
	for k, v := range headers {
		m.Header[k] = []string{v}
	}
	ack, err := d.js.PublishMsg(context.Background(), m)
	require.NoError(t, err)
	return ack.Sequence
}

func (d *deskBundle) goodLetter(t *testing.T, errText string) uint64 {
	t.Helper()
	return d.publishLetter(t, map[string]string{dlq.HeaderStream: "ORDERS", dlq.HeaderConsumer: "billing",
		dlq.HeaderSubject: "orders.created", dlq.HeaderReason: dlq.ReasonMaxDeliver, dlq.HeaderError: errText})
}

func (d *deskBundle) dlqMessages(t *testing.T) uint64 {
	t.Helper()
	s, err := d.js.Stream(context.Background(), "DLQ")
	require.NoError(t, err)
	return s.CachedInfo().State.Msgs
}

// listed polls the dead-letters page until it lists id, and returns it.
func listed(t *testing.T, srv *Server, id uint64) string {
	t.Helper()
	var page string
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		var res *http.Response
		res, page = get(t, srv, "/dead-letters")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		for _, n := range nodes(parse(t, page), "dl-row") {
			if attr(n, "data-id") == u(id) {
				return nil
			}
		}
		return fmt.Errorf("dead letter %d not listed yet", id)
	})
	return page
}

func readyzBody(t *testing.T, srv *Server) (int, readiness) {
	t.Helper()
	res, body := get(t, srv, "/readyz")
	var r readiness
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	return res.StatusCode, r
}

func indexAPI(t *testing.T, srv *Server) index.Status {
	t.Helper()
	res, body := get(t, srv, "/api/v1/dead-letter-index")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	var st index.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	return st
}

// The hole: one poison dead letter stopped the index for good. Now the
// poison is shown, clamped and annotated, and the next one is listed.
func TestPoisonDeadLetterDoesNotStopTheDeadLettersPage(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	require.NoError(t, d.ix.Start(context.Background()))
	before := d.dlqMessages(t)

	poison := d.publishLetter(t, map[string]string{
		dlq.HeaderStream: "ORDERS", dlq.HeaderConsumer: "bil\xffling", dlq.HeaderSubject: "orders.created",
		dlq.HeaderDeliveries: "18446744073709551615", dlq.HeaderSequence: "18446744073709551615",
		dlq.HeaderFailedAt: "99999-01-01T00:00:00Z", dlq.HeaderError: strings.Repeat("e", 60<<10)})
	next := d.goodLetter(t, "card expired after the poison")

	page := listed(t, srv, next)
	require.Contains(t, page, "card expired after the poison")
	require.Empty(t, byTestID(t, page, "dl-index-stalled"))
	require.Empty(t, byTestID(t, page, "dl-unindexable"))

	res, page := get(t, srv, "/dead-letters/"+u(poison))
	require.Equal(t, http.StatusOK, res.StatusCode)
	problems := strings.Join(byTestID(t, page, "dl-problems"), " ")
	require.Contains(t, problems, `Dlq-Deliveries "18446744073709551615" is larger than jetwatch can store; kept as 9223372036854775807`)
	require.Contains(t, problems, "Dlq-Failed-At")
	require.Contains(t, problems, "Dlq-Consumer is not valid UTF-8")
	require.Contains(t, problems, "Dlq-Error is 61440 bytes long")

	res, body := get(t, srv, "/api/v1/dead-letters")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	var list struct{ Items []store.DeadLetter }
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Equal(t, next, list.Items[0].ID)
	require.Equal(t, poison, list.Items[1].ID)
	require.EqualValues(t, 9223372036854775807, list.Items[1].Deliveries)

	status, r := readyzBody(t, srv)
	require.Equal(t, http.StatusOK, status)
	require.True(t, r.Checks["dead_letter_index"].OK, r.Checks["dead_letter_index"].Detail)
	st := indexAPI(t, srv)
	require.Equal(t, next, st.Indexed)
	require.Zero(t, st.Unindexable)
	require.False(t, st.Stalled)

	// Nothing else happened: the DLQ stream holds both, the connection is up.
	require.Equal(t, before+2, d.dlqMessages(t))
	require.True(t, d.nc.IsConnected())
}

// A dead letter SQLite refuses is named on the page and in the API, and the
// index moves past it to the next one.
func TestUnindexableDeadLetterShowsOnThePageAndInTheAPI(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	ctx := context.Background()
	// The next dead letter's id is taken by a row the index should not
	// hold, as in a damaged index.
	refused := d.dlqMessages(t) + 1
	_, err := d.db.SQLForTests().ExecContext(ctx, `INSERT INTO dead_letters (id, dlq_subject, stream, consumer, subject, stream_seq,
		reason, error, service, deliveries, failed_at, indexed_at, payload_available, unavailable_why, size, fingerprint, problems)
		VALUES (?, 'dlq.X.y', 'X', 'y', 'x', 1, 'error', 'left over', '', 1, 0, 0, 1, '', 0, '', 'null')`, refused)
	require.NoError(t, err)
	require.Equal(t, refused, d.goodLetter(t, "refused by the index"))
	next := d.goodLetter(t, "indexed after it")
	require.NoError(t, d.ix.Start(ctx))

	page := listed(t, srv, next)
	require.Equal(t, []string{"1 dead letter could not be indexed; the index moved past it. Its message is still in the DLQ stream:"},
		byTestID(t, page, "dl-unindexable-head"))
	items := byTestID(t, page, "dl-unindexable-item")
	require.Len(t, items, 1)
	require.Contains(t, items[0], "the index already holds a row with this id")
	require.Contains(t, items[0], "(DLQ #"+u(refused)+", dlq.ORDERS.billing)")

	st := indexAPI(t, srv)
	require.Equal(t, 1, st.Unindexable)
	require.Len(t, st.Recent, 1)
	require.Equal(t, refused, st.Recent[0].ID)
	require.Contains(t, st.Recent[0].Reason, "`jetwatch reindex` rebuilds the index")
	require.False(t, st.Stalled)
	require.Equal(t, next, st.Indexed)
	status, _ := readyzBody(t, srv)
	require.Equal(t, http.StatusOK, status, "the index moved on: nothing stalls")
}

// A stalled index makes /readyz fail with the reason, and the dead-letters
// page says how many dead letters are not indexed and why; the lag metric
// is the true distance.
func TestReadyzAndThePageReportAStalledIndex(t *testing.T) {
	t.Parallel()
	srv, d := setupDeskWith(t, index.Config{StallAfter: 200 * time.Millisecond, LagEvery: 20 * time.Millisecond})
	status, r := readyzBody(t, srv)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, check{OK: true, Detail: "up to date (DLQ sequence 3)"}, r.Checks["dead_letter_index"], "setupDesk indexed three")

	// The index is not running (as when stuck): two arrive.
	d.goodLetter(t, "one")
	last := d.goodLetter(t, "two")
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		status, r := readyzBody(t, srv)
		if status != http.StatusServiceUnavailable || r.Checks["dead_letter_index"].OK {
			return fmt.Errorf("readyz %d %+v", status, r)
		}
		return nil
	})
	_, r = readyzBody(t, srv)
	require.Equal(t, "not ready", r.Status)
	require.Regexp(t, `^2 dead letters not indexed for \d+s: indexing is not running$`, r.Checks["dead_letter_index"].Detail)
	require.True(t, r.Checks["nats"].OK)
	require.True(t, r.Checks["database"].OK)

	_, page := get(t, srv, "/dead-letters")
	require.Equal(t, []string{"2 dead letters not indexed yet: indexing is not running"}, byTestID(t, page, "dl-index-stalled"))
	st := indexAPI(t, srv)
	require.True(t, st.Stalled)
	require.EqualValues(t, 2, st.Lag)
	require.Equal(t, last, st.LastSeq)
	_, metrics := get(t, srv, "/metrics")
	require.Contains(t, metrics, "\njetwatch_dead_letter_index_lag 2\n")

	// Running again, it catches up: ready, no banner, no lag.
	require.NoError(t, d.ix.Start(context.Background()))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if status, r := readyzBody(t, srv); status != http.StatusOK {
			return fmt.Errorf("readyz %d %+v", status, r)
		}
		return nil
	})
	page = listed(t, srv, last)
	require.Empty(t, byTestID(t, page, "dl-index-stalled"))
	_, metrics = get(t, srv, "/metrics")
	require.Contains(t, metrics, "\njetwatch_dead_letter_index_lag 0\n")
}
