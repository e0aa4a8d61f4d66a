package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/redact"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/internal/prototypes"
	"github.com/jetwatch/jetwatch/internal/prototypes/prototest"
	"github.com/jetwatch/jetwatch/streambrowse"
)

// browsed is the stream browser API's answer.
type browsed struct {
	Items []struct {
		Seq           uint64              `json:"seq"`
		Subject       string              `json:"subject"`
		Size          int                 `json:"size"`
		Headers       map[string][]string `json:"headers"`
		Payload       []byte              `json:"payload"`
		PayloadKind   string              `json:"payload_kind"`
		PayloadType   string              `json:"payload_type"`
		Decoded       map[string]any      `json:"decoded"`
		PayloadHidden bool                `json:"payload_hidden"`
		Redacted      bool                `json:"redacted"`
	} `json:"items"`
	NextSeq uint64 `json:"next_seq"`
}

func getBrowsed(t *testing.T, srv *Server, target string) browsed {
	t.Helper()
	res, body := get(t, srv, target)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	var b browsed
	require.NoError(t, json.Unmarshal([]byte(body), &b), body)
	return b
}

// workQueue makes JOBS, a WorkQueue stream with a consumer, holding n
// messages on jobs.<even|odd>.
func workQueue(t *testing.T, d *deskBundle, n int) (jetstream.Stream, jetstream.Consumer) {
	t.Helper()
	ctx := context.Background()
	s, err := d.js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy, AllowDirect: true})
	require.NoError(t, err)
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for i := 1; i <= n; i++ {
		subj := "jobs.odd"
		if i%2 == 0 {
			subj = "jobs.even"
		}
		m := nats.NewMsg(subj)
		m.Data = fmt.Appendf(nil, `{"job":%d,"note":"<script>alert(%d)</script>"}`, i, i)
		m.Header.Set("X-Job", fmt.Sprint(i))
		_, err := d.js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	return s, cons
}

// TestStreamBrowserReadsAWorkQueueWithoutConsuming browses a WorkQueue
// stream through the API and the page, in pages and by subject, and
// checks that the stream and its consumer are as they were, and that the
// payload views were audited.
func TestStreamBrowserReadsAWorkQueueWithoutConsuming(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	s, cons := workQueue(t, d, 12)
	ctx := context.Background()
	var before *jetstream.ConsumerInfo
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		var err error
		if before, err = cons.Info(ctx); err != nil {
			return err
		}
		if before.NumPending != 12 {
			return fmt.Errorf("%d pending, not 12 yet", before.NumPending)
		}
		return nil
	})

	// The stream's page links here and to its dead letters.
	seed(t, d.testBundle)
	res, page := get(t, srv, "/streams/ORDERS")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "/streams/ORDERS/messages", attrByTestID(t, page, "stream-browse", "href"))
	require.Equal(t, "/dead-letters?stream=ORDERS", attrByTestID(t, page, "stream-dead-letters", "href"))

	b := getBrowsed(t, srv, "/api/v1/streams/JOBS/messages?limit=5")
	require.Len(t, b.Items, 5)
	require.Equal(t, uint64(12), b.Items[0].Seq, "newest first")
	require.Equal(t, uint64(7), b.NextSeq)
	require.Equal(t, `{"job":12,"note":"<script>alert(12)</script>"}`, string(b.Items[0].Payload), "the payload, base64 in the JSON")
	require.Equal(t, []string{"12"}, b.Items[0].Headers["X-Job"])
	require.Equal(t, "json", b.Items[0].PayloadKind)

	b = getBrowsed(t, srv, "/api/v1/streams/JOBS/messages?start_seq=3&limit=2")
	require.Equal(t, []uint64{3, 4}, []uint64{b.Items[0].Seq, b.Items[1].Seq})
	require.Equal(t, uint64(5), b.NextSeq)
	b = getBrowsed(t, srv, "/api/v1/streams/JOBS/messages?subject=jobs.even&since=2000-01-01T00:00:00Z")
	require.Len(t, b.Items, 6)
	for _, m := range b.Items {
		require.Equal(t, "jobs.even", m.Subject)
	}

	res, page = get(t, srv, "/streams/JOBS/messages?subject=jobs.*&limit=4")
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	require.Len(t, byTestID(t, page, "sm-message"), 4)
	payloads := byTestID(t, page, "sm-payload")
	require.Contains(t, payloads[0], `"note": "<script>alert(12)</script>"`, "pretty and escaped")
	require.NotContains(t, page, "<script>alert(", "payloads are escaped")
	next := attrByTestID(t, page, "sm-next", "href")
	require.Equal(t, "/streams/JOBS/messages?"+url.Values{"subject": {"jobs.*"}, "limit": {"4"}, "start_seq": {"8"}, "order": {"newest"}}.Encode(), next)
	res, page = get(t, srv, next)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"8", "7", "6", "5"}, attrsByTestID(t, page, "sm-message", "data-seq"))

	// Around a sequence, as a dead letter links to it.
	res, page = get(t, srv, "/streams/JOBS/messages?around=6&limit=5")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"4", "5", "6", "7", "8"}, attrsByTestID(t, page, "sm-message", "data-seq"))
	require.Empty(t, byTestID(t, page, "sm-note"))

	after, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, before.NumPending, after.NumPending)
	require.Equal(t, before.AckFloor, after.AckFloor)
	require.Equal(t, before.Delivered, after.Delivered)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(12), info.State.Msgs)
	require.Equal(t, 1, info.State.Consumers)

	log := d.log.String()
	require.Contains(t, log, `action=payload.view target="stream JOBS messages 8-12"`)
	require.Contains(t, log, `action=payload.view target="stream JOBS messages 5-8"`)
	require.NotContains(t, log, "failed=true")

	// Around a message that is gone: its neighbours, and a note.
	require.NoError(t, s.DeleteMsg(ctx, 6))
	res, page = get(t, srv, "/streams/JOBS/messages?around=6&limit=5")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"4", "5", "7", "8", "9"}, attrsByTestID(t, page, "sm-message", "data-seq"))
	require.Contains(t, byTestID(t, page, "sm-note")[0], "Message #6 is not in JOBS (acknowledged")
}

// TestStreamBrowserRefusesBadRequests answers bad parameters with 400
// saying what to write, unknown streams with 404, and sends nothing to
// the server that could break the connection.
func TestStreamBrowserRefusesBadRequests(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	s, _ := workQueue(t, d, 3)
	for q, want := range map[string]string{
		"start_seq=abc":                        "start_seq=1200",
		"start_seq=0":                          "start_seq=1200",
		"around=-1":                            "around=1200",
		"limit=501":                            "from 1 to 500",
		"limit=0":                              "from 1 to 500",
		"since=yesterday":                      "since=1h",
		"order=sideways":                       "order=newest or order=oldest",
		"order=newest&since=1h":                "drop order",
		"subject=jobs..x":                      "subject=orders.*.created",
		"subject=jobs.%3E.x":                   "subject=orders.*.created",
		"subject=jobs%0D%0APUB+x+1":            "subject=orders.*.created",
		"subject=" + strings.Repeat("a.", 600): "subject=orders.*.created",
		"start_seq=2&around=3":                 "give one of start_seq, since and around",
	} {
		for _, path := range []string{"/api/v1/streams/JOBS/messages?", "/streams/JOBS/messages?"} {
			res, body := get(t, srv, path+q)
			require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
			require.Contains(t, body, want, q)
		}
	}
	res, body := get(t, srv, "/api/v1/streams/NOPE/messages")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, body, "no stream NOPE")
	res, _ = get(t, srv, "/api/v1/streams/"+url.PathEscape("A.B")+"/messages")
	require.Equal(t, http.StatusNotFound, res.StatusCode)

	d.connected(t)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs)
	require.Len(t, getBrowsed(t, srv, "/api/v1/streams/JOBS/messages").Items, 3)
}

// TestStreamBrowserGuardsPrivacy applies --hide-payloads and redaction as
// for dead letters, and shows jetwatch's own and KV streams to admins who
// ask only.
func TestStreamBrowserGuardsPrivacy(t *testing.T) {
	t.Parallel()
	redactor, err := redact.New([]string{"Authorization"}, []string{"card.number"})
	require.NoError(t, err)
	srv, d := setupDesk(t, withUsers(t), func(cfg *Config) {
		cfg.Redact, cfg.HidePayloads, cfg.OwnStreams = redactor, true, []string{"DLQ"}
	})
	ctx := context.Background()
	m := nats.NewMsg("orders.paid")
	m.Data = []byte(`{"order":"o-9","card":{"number":"4111111111111111"}}`)
	m.Header.Set("Authorization", "Bearer sk_live_123")
	_, err = d.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	_, err = d.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "sessions"})
	require.NoError(t, err)

	vera, otto, ada := signedIn(t, srv, "vera"), signedIn(t, srv, "otto"), signedIn(t, srv, "ada")
	res, body := vera.do(http.MethodGet, "/api/v1/streams/ORDERS/messages", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	var b browsed
	require.NoError(t, json.Unmarshal([]byte(body), &b))
	require.Len(t, b.Items, 1)
	require.True(t, b.Items[0].PayloadHidden)
	require.Nil(t, b.Items[0].Payload)
	require.Equal(t, []string{redact.Redacted}, b.Items[0].Headers["Authorization"])
	res, page := vera.do(http.MethodGet, "/streams/ORDERS/messages", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotEmpty(t, byTestID(t, page, "sm-payload-hidden"))
	require.NotContains(t, page, "o-9")
	require.NotContains(t, page, "sk_live_123")

	res, page = otto.do(http.MethodGet, "/streams/ORDERS/messages", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "sm-payload")[0], `"order": "o-9"`)
	require.NotContains(t, page, "4111111111111111")
	require.NotContains(t, page, "sk_live_123")
	require.NotEmpty(t, byTestID(t, page, "sm-redacted"))
	require.Contains(t, d.log.String(), "actor=otto")
	require.Equal(t, 1, strings.Count(d.log.String(), "action=payload.view"), "the viewer saw no payload: only otto's view is audited")

	// A JSON payload larger than the browser reads cannot be masked: it
	// is withheld rather than shown cut and unmasked.
	big := nats.NewMsg("orders.big")
	big.Data = []byte(`{"card":{"number":"4111111111111111"},"pad":"` + strings.Repeat("x", streambrowse.MaxShownPayload) + `"}`)
	_, err = d.js.PublishMsg(ctx, big)
	require.NoError(t, err)
	res, page = otto.do(http.MethodGet, "/streams/ORDERS/messages?subject=orders.big", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, page, "4111111111111111")
	require.Contains(t, byTestID(t, page, "sm-payload-withheld")[0], "redaction rules need the whole of it")
	res, body = otto.do(http.MethodGet, "/api/v1/streams/ORDERS/messages?subject=orders.big", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, body, "4111111111111111")
	require.NotContains(t, body, "NDExMTEx", "nor in base64")
	require.NoError(t, json.Unmarshal([]byte(body), &b))
	require.True(t, b.Items[0].Redacted)
	require.Nil(t, b.Items[0].Payload)

	for _, stream := range []string{"DLQ", "KV_sessions", "JETWATCH_ADVISORIES"} {
		for _, c := range []*client{vera, otto, ada} {
			res, body := c.do(http.MethodGet, "/streams/"+stream+"/messages", nil, "")
			require.Equal(t, http.StatusForbidden, res.StatusCode, stream)
			if c == ada {
				require.Contains(t, body, "include_internal=1")
			}
		}
		res, _ = otto.do(http.MethodGet, "/streams/"+stream+"/messages?include_internal=1", nil, "")
		require.Equal(t, http.StatusForbidden, res.StatusCode, "only an admin may ask")
		require.Contains(t, d.log.String(), `actor=otto action=payload.view target="stream `+stream+`" result="refused: `, "the attempt is audited")
		res, body := ada.do(http.MethodGet, "/streams/"+stream+"/messages?include_internal=1", nil, "")
		require.Equal(t, http.StatusOK, res.StatusCode, body)
	}
}

// TestProtobufPayloadsDecoded decodes a protobuf payload by the type its
// subject maps to, with a descriptor set the test builds, in the stream
// browser and on a dead letter's page, which links back to the stream.
func TestProtobufPayloadsDecoded(t *testing.T) {
	t.Parallel()
	types, err := prototypes.Load(prototest.WriteDescriptorSet(t, t.TempDir()), "orders.*=shop.Order")
	require.NoError(t, err)
	srv, d := setupDesk(t, func(cfg *Config) { cfg.Proto = types })
	ctx := context.Background()
	payload := prototest.Order(t, "ord-42", 3, "book")
	ack, err := d.js.Publish(ctx, "orders.created", payload)
	require.NoError(t, err)

	b := getBrowsed(t, srv, "/api/v1/streams/ORDERS/messages")
	require.Len(t, b.Items, 1)
	require.Equal(t, "protobuf", b.Items[0].PayloadKind)
	require.Equal(t, "shop.Order", b.Items[0].PayloadType)
	require.Equal(t, map[string]any{"order_id": "ord-42", "quantity": "3", "items": []any{map[string]any{"sku": "book"}}}, b.Items[0].Decoded)
	require.Equal(t, payload, b.Items[0].Payload)
	res, page := get(t, srv, "/streams/ORDERS/messages")
	require.Equal(t, http.StatusOK, res.StatusCode)
	shown := byTestID(t, page, "sm-payload")[0]
	for _, want := range []string{`"order_id": "ord-42"`, `"quantity": "3"`, `"sku": "book"`} {
		require.Contains(t, shown, want)
	}
	require.Contains(t, page, "protobuf shop.Order")

	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = payload
	dlq.Envelope{Reason: dlq.ReasonError, Error: "declined", Stream: "ORDERS", Consumer: "billing", Subject: "orders.created",
		Sequence: ack.Sequence, FailedAt: testNow}.Apply(m.Header)
	dack, err := d.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.NoError(t, d.ix.CatchUp(ctx))
	res, page = get(t, srv, "/dead-letters/"+u(dack.Sequence))
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "dl-payload")[0], `"order_id": "ord-42"`)
	show := attrByTestID(t, page, "dl-show-in-stream", "href")
	require.Equal(t, "/streams/ORDERS/messages?around="+u(ack.Sequence)+"&limit=21", show)
	res, page = get(t, srv, show)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{u(ack.Sequence)}, attrsByTestID(t, page, "sm-message", "data-seq"))
	same := attrByTestID(t, page2(t, srv, "/dead-letters/"+u(dack.Sequence)), "dl-show-subject", "href")
	require.Contains(t, same, "subject=orders.created")
}

func page2(t *testing.T, srv *Server, path string) string {
	t.Helper()
	res, page := get(t, srv, path)
	require.Equal(t, http.StatusOK, res.StatusCode)
	return page
}

// attrsByTestID is attribute key of every element with the data-testid.
func attrsByTestID(t testing.TB, page, id, key string) []string {
	t.Helper()
	var out []string
	for _, n := range nodes(parse(t, page), id) {
		out = append(out, attr(n, key))
	}
	return out
}

// attrByTestID is attribute key of the one element with the data-testid.
func attrByTestID(t testing.TB, page, id, key string) string {
	t.Helper()
	all := attrsByTestID(t, page, id, key)
	require.Len(t, all, 1, id)
	return all[0]
}
