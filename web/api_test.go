package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

func TestAPIStreams(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, body := get(t, srv, "/api/v1/streams")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", strings.Split(res.Header.Get("Content-Type"), ";")[0])
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	var streams struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &streams))
	require.Len(t, streams.Items, 4)
	require.Equal(t, "FULL", streams.Items[1]["name"], "sorted by name")
	for _, key := range []string{"consumer_count", "first_seq", "in_per_sec", "limits", "health", "sampled_at"} {
		require.Contains(t, streams.Items[1], key)
	}
	require.NotContains(t, streams.Items[1], "config", "lists leave configs out")

	res, body = get(t, srv, "/api/v1/streams/ORDERS")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var stream map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &stream))
	require.Equal(t, map[string]any{"name": "ORDERS", "subjects": []any{"orders.>"}, "num_replicas": 3.0}, stream["config"])
	require.Equal(t, "warning", stream["health"].(map[string]any)["level"])

	res, body = get(t, srv, "/api/v1/streams/"+url.PathEscape(oddStream))
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Contains(t, body, `"name":"weird?\u0026#%name"`)
}

func TestAPIConsumers(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	_, body := get(t, srv, "/api/v1/streams/ORDERS/consumers")
	var consumers struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &consumers))
	require.Len(t, consumers.Items, 2)
	require.Equal(t, "shipping", consumers.Items[1]["name"])
	require.Equal(t, 150.0, consumers.Items[1]["num_pending"])
	require.Equal(t, true, consumers.Items[1]["stalled"])

	_, body = get(t, srv, "/api/v1/streams/FULL/consumers")
	require.JSONEq(t, `{"items":[]}`, body, "an empty list, not null")

	_, body = get(t, srv, "/api/v1/streams/ORDERS/consumers/shipping")
	require.NotContains(t, body, `"history"`, "no history unless asked for")
	require.Contains(t, body, `"config":{"durable_name":"shipping"}`)

	_, body = get(t, srv, "/api/v1/streams/"+url.PathEscape(oddStream)+"/consumers/"+url.PathEscape(oddConsumer))
	require.Contains(t, body, `"num_pending":7`)
}

func TestAPIConsumerHistory(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	type history struct {
		Name    string `json:"name"`
		History []struct {
			At              string  `json:"at"`
			NumPending      uint64  `json:"num_pending"`
			NumAckPending   uint64  `json:"num_ack_pending"`
			DeliveredSeq    uint64  `json:"delivered_seq"`
			DeliveredPerSec float64 `json:"delivered_per_sec"`
			AckedPerSec     float64 `json:"acked_per_sec"`
		} `json:"history"`
	}
	for _, window := range []string{"1h", "90m"} {
		res, body := get(t, srv, "/api/v1/streams/ORDERS/consumers/shipping?history="+window)
		require.Equal(t, http.StatusOK, res.StatusCode, window)
		var c history
		require.NoError(t, json.Unmarshal([]byte(body), &c), window)
		require.Equal(t, "shipping", c.Name)
		require.Len(t, c.History, 2, window)
		require.Equal(t, "2026-11-26T11:59:50Z", c.History[0].At)
		require.Equal(t, uint64(100), c.History[0].NumPending)
		require.Equal(t, uint64(150), c.History[1].NumPending)
		require.Equal(t, uint64(3), c.History[1].NumAckPending)
		require.Zero(t, c.History[0].DeliveredPerSec, "the first point has no predecessor")
		require.InDelta(t, 0.5, c.History[1].DeliveredPerSec, 1e-9, "5 deliveries in 10 s")
		require.InDelta(t, 0.0, c.History[1].AckedPerSec, 1e-9, "the ack floor did not move")
	}
	// Longer windows have coarser buckets, which keep the maximum.
	for _, window := range []string{"24h", "7d", "720h"} {
		res, body := get(t, srv, "/api/v1/streams/ORDERS/consumers/shipping?history="+window)
		require.Equal(t, http.StatusOK, res.StatusCode, window)
		var c history
		require.NoError(t, json.Unmarshal([]byte(body), &c), window)
		require.NotEmpty(t, c.History, window)
		require.Equal(t, uint64(150), c.History[len(c.History)-1].NumPending, window)
	}

	// A window without samples is an empty history, not a missing one.
	srv2, b2 := setup(t, func(c *Config) {
		c.Now = func() time.Time { return testNow.Add(2 * time.Hour) }
	})
	seed(t, b2)
	_, body := get(t, srv2, "/api/v1/streams/ORDERS/consumers/shipping?history=1h")
	require.Contains(t, body, `"history":[]`)
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	for target, status := range map[string]int{
		"/api/v1/streams/NOPE":                                  http.StatusNotFound,
		"/api/v1/streams/NOPE/consumers":                        http.StatusNotFound,
		"/api/v1/streams/ORDERS/consumers/nope":                 http.StatusNotFound,
		"/api/v1/streams/ORDERS/consumers/billing?history=x":    http.StatusUnprocessableEntity,
		"/api/v1/streams/ORDERS/consumers/billing?history=31d":  http.StatusUnprocessableEntity,
		"/api/v1/streams/ORDERS/consumers/billing?history=-1h":  http.StatusUnprocessableEntity,
		"/api/v1/streams/ORDERS/consumers/billing?history=1.5d": http.StatusUnprocessableEntity,
		"/api/v1/nothing":                                       http.StatusNotFound,
	} {
		res, body := get(t, srv, target)
		require.Equal(t, status, res.StatusCode, target)
		require.Equal(t, "application/json", strings.Split(res.Header.Get("Content-Type"), ";")[0], target)
		var e map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &e), target)
		require.Len(t, e, 1, target)
		require.NotEmpty(t, e["error"], target)
	}
	_, body := get(t, srv, "/api/v1/streams/NOPE")
	require.JSONEq(t, `{"error":"unknown stream NOPE"}`, body)
}

func TestAPIInternalErrorsStayInTheLog(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	require.NoError(t, b.db.Close(), "every query now fails")
	res, body := get(t, srv, "/api/v1/streams")
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.JSONEq(t, `{"error":"internal error, see jetwatch logs"}`, body)
	require.Equal(t, 1, strings.Count(b.log.String(), `msg="request failed"`), "logged once")
	require.Contains(t, b.log.String(), "database is closed")

	res, page := get(t, srv, "/")
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.Contains(t, byTestID(t, page, "error")[0], "internal error, see jetwatch logs")
	require.NotContains(t, page, "database is closed")
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
		"90m": 90 * time.Minute, "30d": 30 * 24 * time.Hour, "1s": time.Second} {
		got, err := parseWindow(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "-1h", "31d", "1.5d", "0s", "500ms", "d", "+1d", "721h",
		"106752d", "213504d", "9223372036854775807d", "-0d", "99999999999999999999h"} {
		_, err := parseWindow(in)
		require.Error(t, err, in)
	}
}

// TestAPIHealthIsThePagesHealth compares, stream by stream, the health
// /api/v1/streams answers with the one the overview shows, fresh and
// stale, with and without jetwatch's own.
func TestAPIHealthIsThePagesHealth(t *testing.T) {
	t.Parallel()
	for _, late := range []time.Duration{0, 40 * time.Second} {
		srv, b := setup(t, func(c *Config) { c.Now = func() time.Time { return testNow.Add(late) } })
		seed(t, b)
		seedTrouble(t, b)
		for _, q := range []struct{ page, api string }{{"/", "/api/v1/streams"}, {"/?own=1", "/api/v1/streams?own=true"}} {
			_, page := get(t, srv, q.page)
			shown := map[string]string{}
			for _, row := range nodes(parse(t, page), "stream-row") {
				shown[attr(row, "data-stream")] = attr(row, "data-level")
			}
			res, body := get(t, srv, q.api)
			require.Equal(t, http.StatusOK, res.StatusCode)
			var streams struct {
				Items []struct {
					Name   string       `json:"name"`
					Health store.Health `json:"health"`
					Stale  bool         `json:"stale"`
				} `json:"items"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &streams))
			answered := map[string]string{}
			for _, it := range streams.Items {
				answered[it.Name] = it.Health.Level
			}
			require.Equal(t, shown, answered, "%s vs %s, %s late", q.page, q.api, late)
			for _, it := range streams.Items {
				require.Equal(t, late > 0, it.Stale, it.Name)
				if late > 0 {
					require.NotEmpty(t, it.Health.Reasons, it.Name)
					require.Contains(t, it.Health.Reasons[0], "not sampled since ", it.Name)
				}
			}
			if late == 0 {
				require.Equal(t, "critical", answered["SOLO"])
			} else {
				require.Equal(t, "stale", answered["ORDERS"])
			}
			require.Equal(t, q.api != "/api/v1/streams", answered["DLQ"] != "", "own streams only when asked for")
		}
	}
	srv, _ := setup(t)
	res, body := get(t, srv, "/api/v1/streams?own=perhaps")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, body, "own must be true or false")
}
