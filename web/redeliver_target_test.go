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

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// streamCounts counts the messages of every stream, to show that nothing
// happened on the server.
func (d *deskBundle) streamCounts(t *testing.T) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]uint64{}
	for name := range d.js.StreamNames(ctx).Name() {
		s, err := d.js.Stream(ctx, name)
		require.NoError(t, err)
		out[name] = s.CachedInfo().State.Msgs
	}
	return out
}

// An operator's typed subject, an edit, the API and a dead letter's own
// Dlq-Subject all go through one policy: nothing reaches the JetStream
// API, a KV bucket or jetwatch's own records, the answer is 422 with the
// reason, and the refusal is audited.
func TestRedeliveryCannotActOnNATSOrJetwatch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, d := setupDesk(t)
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{})
	require.NoError(t, err)
	log.Start(ctx)
	t.Cleanup(log.Stop)
	srv.cfg.Audit = log
	kv, err := d.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "jetwatch_tokens"})
	require.NoError(t, err)
	_, err = kv.PutString(ctx, "real", "token")
	require.NoError(t, err)

	// A dead letter whose origin subject is the JetStream API.
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"seq":1}`)
	dlq.Envelope{Stream: "ORDERS", Subject: "$JS.API.STREAM.DELETE.ORDERS", Sequence: 3, Consumer: "billing",
		Reason: dlq.ReasonMaxDeliver, FailedAt: testNow}.Apply(m.Header)
	ack, err := d.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.NoError(t, d.ix.CatchUp(ctx))
	poisoned := "/dead-letters/" + u(ack.Sequence)
	before := d.streamCounts(t)

	path := "/dead-letters/" + u(d.ids["json"])
	token, cookie := csrfOf(t, srv, path)
	targets := []string{
		"$JS.API.STREAM.DELETE.ORDERS", "$JS.API.STREAM.PURGE.DLQ", "$JS.API.STREAM.MSG.DELETE.JETWATCH_AUDIT",
		"$KV.jetwatch_tokens.forged", dlq.ActionSubjectPrefix + u(d.ids["json"]), "jetwatch.audit.forged",
		"_INBOX.x", strings.Repeat("orders.", 800) + "x", "orders.\x00created",
	}
	for _, target := range targets {
		res, page := postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}, "subject": {target}}, cookie)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%.60q", target)
		require.NotEmpty(t, byTestID(t, page, "flash"))
		form := url.Values{"csrf": {token}, "subject": {target}, "payload": {`{"seq":1}`}, "headers": {""}, "edited": {"1"}}
		res, _ = postForm(t, srv, path+"/redeliver", form, cookie)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "edited, %.60q", target)
		body, _ := json.Marshal(map[string]any{"subject": target, "payload": []byte(`{"seq":1}`)})
		code, out := postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", string(body))
		require.Equal(t, http.StatusUnprocessableEntity, code, "API, %.60q", target)
		require.NotEmpty(t, out["error"])
	}
	res, page := postForm(t, srv, poisoned+"/redeliver", url.Values{"csrf": {token}}, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, byTestID(t, page, "flash")[0], "system subject")

	// Header names NATS cannot carry are the operator's to fix: 422.
	code, out := postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", `{"headers":{"Bad Name":["x"]}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, out["error"], "bad header")
	res, _ = postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}, "payload": {"{}"}, "headers": {"Bad Name: x"}, "edited": {"1"}}, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)

	after := d.streamCounts(t)
	audited, err := d.js.Stream(ctx, "JETWATCH_AUDIT")
	require.NoError(t, err)
	st := audited.CachedInfo().State
	require.Equal(t, st.LastSeq, st.Msgs, "no audit record was deleted")
	delete(before, "JETWATCH_AUDIT") // it grew by the refusals
	delete(after, "JETWATCH_AUDIT")
	require.Equal(t, before, after, "nothing reached any stream")
	require.True(t, d.nc.IsConnected(), "the connection survived")
	keys, err := kv.Keys(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"real"}, keys)
	_, body := get(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"]))
	require.Contains(t, body, `"status":"pending"`)

	// Every refusal is in the audit log, with its reason.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		entries, err := log.List(ctx, store.AuditFilter{}, 500)
		if err != nil {
			return err
		}
		refused := 0
		for _, e := range entries {
			if e.Action == "redeliver" && e.Failed && e.Result != "" {
				refused++
			}
		}
		if refused < 3*len(targets) {
			return fmt.Errorf("%d refusals audited, want at least %d (form, edit and API)", refused, 3*len(targets))
		}
		return nil
	})

	// And an ordinary redelivery still works afterwards.
	code, out = postJSON(t, srv, "/api/v1/dead-letters/"+u(d.ids["json"])+"/redeliver", `{}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "ORDERS", out["ack_stream"])
}

// Ids in URLs become KV keys, and keys become subjects: a viewer's
// 5,000-character job id must not make the server close the connection.
func TestIDsInURLsNeverReachTheConnection(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	long := strings.Repeat("a", 5000)
	for _, path := range []string{"/redeliveries/" + long, "/api/v1/redeliveries/" + long, "/redeliveries/a..b", "/api/v1/redeliveries/%2A"} {
		res, _ := get(t, srv, path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, "%.40s", path)
	}
	code, _ := postJSON(t, srv, "/api/v1/redeliveries/"+long+"/pause", `{}`)
	require.Equal(t, http.StatusNotFound, code)
	require.True(t, d.nc.IsConnected())
	require.NoError(t, d.nc.Flush(), "the connection is still up")
}
