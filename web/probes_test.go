package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	b.setNATS(NATSState{LastError: "no servers available"})
	res, body := get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, res.StatusCode, "alive even without NATS")
	require.JSONEq(t, `{"status":"ok","checks":{"process":"ok"}}`, body)

	// Closed for good: nats.go will not reconnect, only a restart helps.
	b.setNATS(NATSState{Closed: true, LastError: "nats: maximum control line exceeded"})
	res, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Contains(t, body, "restart jetwatch")
}

func readyz(t *testing.T, srv *Server) (int, readiness) {
	t.Helper()
	res, body := get(t, srv, "/readyz")
	var r readiness
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.Len(t, r.Checks, 3, body)
	return res.StatusCode, r
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	status, r := readyz(t, srv)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ready", r.Status)
	require.Equal(t, check{OK: true, Detail: "connected to nats://127.0.0.1:4222"}, r.Checks["nats"])
	require.Equal(t, check{OK: true, Detail: "writable"}, r.Checks["database"])
	require.Equal(t, check{OK: true, Detail: "last sample at 2026-11-26T11:59:58Z"}, r.Checks["first_sample"])

	b.setNATS(NATSState{Since: b.now.Add(-90 * time.Second), LastError: "connection refused", Server: "nats://127.0.0.1:4222"})
	status, r = readyz(t, srv)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "not ready", r.Status)
	require.Equal(t, check{Detail: "not connected since 2026-11-26T11:58:30Z: connection refused"}, r.Checks["nats"])
	require.True(t, r.Checks["database"].OK)
	require.True(t, r.Checks["first_sample"].OK)

	b.setNATS(NATSState{Connected: true, Server: "nats://127.0.0.1:4222"})
	b.setSampler(store.SamplerState{})
	status, r = readyz(t, srv)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, check{Detail: "no sample stored yet"}, r.Checks["first_sample"])
}

// stuckIndex is an index whose writes hang until their context ends.
type stuckIndex struct{ Index }

func (stuckIndex) CheckWritable(ctx context.Context) error {
	<-ctx.Done()
	return errors.New("disk I/O error at /var/lib/jetwatch/jetwatch.db: " + ctx.Err().Error())
}

func TestReadyzDatabaseNotWritable(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, func(c *Config) { c.Index = stuckIndex{c.Index} })
	start := time.Now()
	status, r := readyz(t, srv)
	require.Less(t, time.Since(start), 10*time.Second, "the write probe is bounded")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, check{Detail: "not writable, see jetwatch logs"}, r.Checks["database"])
	require.Contains(t, b.log.String(), "disk I/O error", "the reason is logged, not answered")
}
