package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// setupAlerts serves the seeded index with a real alert desk over a real
// NATS server: rule orders-lag fires on the seeded lagging consumer.
func setupAlerts(t *testing.T) (*Server, *alert.Evaluator) {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	rules, err := alert.Parse([]byte(`receivers:
  - {name: ops, url: "https://user:pw@hooks.example.com/hook?token=tok123", format: slack, secret: hush-hush}
rules:
  - {name: orders-lag, kind: consumer_lag, stream: ORDERS, above: 0, receivers: [ops]}
  - {name: quiet, kind: stream_limit, stream: NONE, above: 90, receivers: [ops]}
`), "rules.yaml", nil)
	require.NoError(t, err)
	var ev *alert.Evaluator
	srv, b := setup(t, func(c *Config) {
		db := c.Index.(*store.DB)
		ev, err = alert.NewEvaluator(js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return rules },
			Index: db, DeadLetters: query.New(db, nil, ""), Now: c.Now, Registerer: prometheus.NewRegistry()})
		require.NoError(t, err)
		c.Alerts = alert.Alerting{Evaluator: ev, Log: alert.NewDeliveryLog(db)}
	})
	seed(t, b)
	require.NoError(t, ev.Evaluate(context.Background()))
	return srv, ev
}

func TestAlertPagesShowStateAndActThroughCSRF(t *testing.T) {
	t.Parallel()
	srv, ev := setupAlerts(t)

	res, page := get(t, srv, "/alerts")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"firing", "inactive"}, byTestID(t, page, "alert-state"))
	require.NotContains(t, page, "hush-hush", "a receiver's secret is never shown")
	require.NotContains(t, page, "tok123", "nor a token in its URL")
	require.NotContains(t, page, "pw@")
	require.NotContains(t, page, "example.com/hook", "nor its path: a Slack webhook's path is its secret")
	require.Contains(t, page, "https://hooks.example.com/…")

	var api struct {
		Items []struct {
			Rule, State string
			Instances   []alert.Instance
		}
	}
	_, body := get(t, srv, "/api/v1/alerts")
	require.NoError(t, json.Unmarshal([]byte(body), &api))
	require.Len(t, api.Items, 2)
	require.Equal(t, "orders-lag", api.Items[0].Rule)
	require.Equal(t, "firing", api.Items[0].State)
	require.Equal(t, "inactive", api.Items[1].State)
	require.NotEmpty(t, api.Items[0].Instances)
	fp := api.Items[0].Instances[0].Fingerprint

	// Without the form token nothing happens.
	res, _ = postForm(t, srv, "/alerts/ack", url.Values{"fingerprint": {fp}}, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	token, cookie := csrfOf(t, srv, "/alerts")
	res, _ = postForm(t, srv, "/alerts/ack", url.Values{"csrf": {token}, "fingerprint": {fp}, "note": {"on it"}}, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, page = postForm(t, srv, "/alerts/silence", url.Values{"csrf": {token}, "rule": {"orders-lag"}, "for": {"soon"}, "why": {"x"}}, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, byTestID(t, page, "flash")[0], "not a duration")
	res, page = postForm(t, srv, "/alerts/silence", url.Values{"csrf": {token}, "rule": {"orders-lag"}, "for": {"1h"}}, cookie)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, byTestID(t, page, "flash")[0], "say why")
	res, _ = postForm(t, srv, "/alerts/silence", url.Values{"csrf": {token}, "rule": {"orders-lag"}, "for": {"1h"}, "why": {"deploying billing"}}, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, page = get(t, srv, "/alerts")
	require.Contains(t, byTestID(t, page, "alert-silenced")[0], "deploying billing", "shown before the next evaluation")

	require.NoError(t, ev.Evaluate(context.Background()))
	_, page = get(t, srv, "/alerts")
	require.Contains(t, byTestID(t, page, "alert-acked")[0], "acknowledged by anonymous@")
	require.Contains(t, byTestID(t, page, "alert-silenced")[0], "deploying billing")

	status, out := postJSON(t, srv, "/api/v1/alerts/silences", `{"rule":"quiet","for":"30m","why":"no such stream yet"}`)
	require.Equal(t, http.StatusCreated, status, out)
	require.Equal(t, "quiet", out["rule"])
	status, out = postJSON(t, srv, "/api/v1/alerts/ack", `{"fingerprint":"0000000000000000"}`)
	require.Equal(t, http.StatusNotFound, status, out)
	status, _ = postJSON(t, srv, "/api/v1/alerts/silences", `{"rule":"nope","for":"30m","why":"x"}`)
	require.Equal(t, http.StatusNotFound, status)

	res, body = get(t, srv, "/api/v1/notifications")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"items":[]}`, body)
	res, page = get(t, srv, "/alerts/notifications")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, byTestID(t, page, "no-deliveries"), 1)
}

func TestAlertPagesWithoutRulesSayHowToTurnThemOn(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	res, _ := get(t, srv, "/api/v1/alerts")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, page := get(t, srv, "/alerts")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, byTestID(t, page, "alerts-off")[0], "--rules FILE")
}
