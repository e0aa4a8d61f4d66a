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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/pause"
	"github.com/jetwatch/jetwatch/store"
)

// pausedOnServer is the consumer's pause as the server tells it.
func (d *deskBundle) pausedOnServer(t *testing.T, stream, name string) (bool, *time.Time) {
	t.Helper()
	c, err := d.js.Consumer(context.Background(), stream, name)
	require.NoError(t, err)
	info := c.CachedInfo()
	return info.Paused, info.Config.PauseUntil
}

// auditEntry waits for the newest audit entry of action and returns it.
func auditEntry(t *testing.T, log *audit.Log, action string, want func(audit.Entry) bool) audit.Entry {
	t.Helper()
	var got audit.Entry
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		entries, err := log.List(context.Background(), store.AuditFilter{Action: action}, 50)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if want(e) {
				got = e
				return nil
			}
		}
		return fmt.Errorf("no matching %s entry among %d", action, len(entries))
	})
	return got
}

// An operator pauses a consumer until a time and resumes it, through the
// API and the consumer page's forms; the server's consumer info says so,
// and every act is audited. Viewers, requests without a CSRF token and
// bad times change nothing on the server.
func TestConsumerPauseAndResumeOnTheServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The server judges the pause by the real clock.
	srv, d := setupDesk(t, withUsers(t), func(cfg *Config) { cfg.Now = time.Now })
	seed(t, d.testBundle) // ORDERS / billing in the index, for its page
	_, err := d.js.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	log, err := audit.Open(ctx, d.nc, d.db, audit.Config{})
	require.NoError(t, err)
	log.Start(ctx)
	t.Cleanup(log.Stop)
	srv.cfg.Audit = log
	srv.cfg.Pauses = pause.New(d.js, pause.Config{})
	const api = "/api/v1/streams/ORDERS/consumers/billing"
	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	body := `{"until":"` + until.Format(time.RFC3339) + `"}`
	notPaused := func(why string) {
		t.Helper()
		paused, _ := d.pausedOnServer(t, "ORDERS", "billing")
		require.False(t, paused, why)
	}

	viewer, operator := signedIn(t, srv, "vera"), signedIn(t, srv, "otto")
	viewer.header.Set(csrfHeader, viewer.csrf)
	res, _ := viewer.do(http.MethodPost, api+"/pause", nil, body)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	notPaused("a viewer may not pause")
	res, _ = operator.do(http.MethodPost, api+"/pause", nil, body)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	notPaused("no CSRF token")
	res, _ = operator.do(http.MethodPost, "/streams/ORDERS/consumers/billing/pause", url.Values{"for": {"1h"}}, "")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	notPaused("the form without its CSRF token")

	operator.header.Set(csrfHeader, operator.csrf)
	for _, tc := range []struct {
		path, body string
		status     int
		says       string
	}{
		{api + "/pause", `{"until":"tomorrow"}`, http.StatusBadRequest, "not an RFC 3339 time"},
		{api + "/pause", `{"until":`, http.StatusBadRequest, "not the JSON this endpoint takes"},
		{api + "/pause", `{}`, http.StatusBadRequest, "not an RFC 3339 time"},
		{api + "/pause", `{"until":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}`, http.StatusUnprocessableEntity, "not in the future"},
		{api + "/pause", `{"until":"` + time.Now().Add(40*24*time.Hour).UTC().Format(time.RFC3339) + `"}`, http.StatusUnprocessableEntity, "at most 30 days"},
		{"/api/v1/streams/ORDERS/consumers/nobody/pause", body, http.StatusNotFound, "stream ORDERS has no consumer nobody"},
		{"/api/v1/streams/NOPE/consumers/billing/pause", body, http.StatusNotFound, "there is no stream NOPE"},
		{"/api/v1/streams/KV_x/consumers/billing/pause", body, http.StatusUnprocessableEntity, "jetwatch's or NATS's own records"},
		{"/api/v1/streams/ORDERS/consumers/jetwatch-probe/pause", body, http.StatusUnprocessableEntity, "jetwatch's own"},
		{"/api/v1/streams/ORDERS/consumers/" + strings.Repeat("b", 300) + "/pause", body, http.StatusUnprocessableEntity, "consumer"},
	} {
		res, page := operator.do(http.MethodPost, tc.path, nil, tc.body)
		require.Equal(t, tc.status, res.StatusCode, "%s %s: %s", tc.path, tc.body, page)
		require.Contains(t, page, tc.says, tc.body)
		require.NotContains(t, page, "nats:", "the server's own error is not shown")
	}
	notPaused("no refused request paused it")
	_, err = d.js.Consumer(ctx, "ORDERS", "nobody")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "nor created a consumer")
	require.True(t, d.nc.IsConnected())

	// Paused through the API: the server's consumer info says until when.
	res, out := operator.do(http.MethodPost, api+"/pause", nil, body)
	require.Equal(t, http.StatusOK, res.StatusCode, out)
	var st pause.State
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.True(t, st.Paused)
	require.True(t, until.Equal(*st.PauseUntil))
	paused, pauseUntil := d.pausedOnServer(t, "ORDERS", "billing")
	require.True(t, paused)
	require.True(t, until.Equal(*pauseUntil), "%s != %s", until, pauseUntil)
	e := auditEntry(t, log, "consumer.pause", func(e audit.Entry) bool { return !e.Failed })
	require.Equal(t, "otto", e.Actor)
	require.Equal(t, api+"/pause", e.Target)
	require.Equal(t, "consumer ORDERS/billing paused until "+until.Format(time.RFC3339), e.Result)
	e = auditEntry(t, log, "consumer.pause", func(e audit.Entry) bool { return e.Failed && strings.Contains(e.Result, "not in the future") })
	require.Equal(t, "otto", e.Actor, "refusals are audited too")
	auditEntry(t, log, "consumer.pause", func(e audit.Entry) bool {
		return e.Failed && e.Result == "Nothing was changed: stream ORDERS has no consumer nobody."
	})

	// Resumed through the API.
	res, out = operator.do(http.MethodPost, api+"/resume", nil, `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, out)
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.False(t, st.Paused)
	notPaused("resumed")
	auditEntry(t, log, "consumer.resume", func(e audit.Entry) bool { return e.Result == "consumer ORDERS/billing resumed (not paused)" })

	// The page's forms: an operator sees them, a viewer does not.
	page := "/streams/ORDERS/consumers/billing"
	res, html := viewer.do(http.MethodGet, page, nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, byTestID(t, html, "consumer-pause"))
	res, html = operator.do(http.MethodGet, page, nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, page+"/pause", formAction(t, html, "consumer-pause-form"))
	res, _ = operator.do(http.MethodPost, page+"/pause", url.Values{"csrf": {operator.csrf}, "for": {"4h"}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, page+"?done=paused", res.Header.Get("Location"))
	paused, pauseUntil = d.pausedOnServer(t, "ORDERS", "billing")
	require.True(t, paused)
	require.WithinDuration(t, time.Now().Add(4*time.Hour), *pauseUntil, time.Minute)
	_, html = operator.do(http.MethodGet, res.Header.Get("Location"), nil, "")
	require.Equal(t, []string{"Paused on the server. The page shows it from the next sample on."}, byTestID(t, html, "pause-done"))

	res, html = operator.do(http.MethodPost, page+"/pause", url.Values{"csrf": {operator.csrf}, "until": {"next week"}}, "")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, html, "not an RFC 3339 time")
	_, stillUntil := d.pausedOnServer(t, "ORDERS", "billing")
	require.True(t, pauseUntil.Equal(*stillUntil), "a refused pause leaves the one in force")

	res, _ = operator.do(http.MethodPost, page+"/resume", url.Values{"csrf": {operator.csrf}}, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	notPaused("resumed from the page")
}

// Without NATS, the pause routes say nothing changed and to retry.
func TestConsumerPauseWithoutNATSSaysNothingChanged(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t, func(cfg *Config) { cfg.Now = time.Now })
	srv.cfg.Pauses = pause.New(d.js, pause.Config{})
	d.nc.Close()
	code, out := postJSON(t, srv, "/api/v1/streams/ORDERS/consumers/billing/pause", `{"until":"`+time.Now().Add(time.Hour).Format(time.RFC3339)+`"}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, out["error"], "Nothing was changed: jetwatch is not connected to NATS", d.log.String())
	srv.cfg.Pauses = nil
	code, out = postJSON(t, srv, "/api/v1/streams/ORDERS/consumers/billing/resume", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, out["error"], "Pausing consumers is not available")
}
