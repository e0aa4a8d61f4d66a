package natsconn

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "nats://[redacted]@host:4222", RedactURL("nats://bob:s3cret@host:4222"))
	require.Equal(t, "nats://[redacted]@a:1,nats://b:2", RedactURL("nats://tok@a:1, nats://b:2"))
	require.Equal(t, "nats://host:4222", RedactURL("nats://host:4222"))
	require.NotContains(t, RedactURL("nats://u:p@ss%zz@h:1"), "p@ss")
}

func writeContext(t *testing.T, dir, name, body string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), []byte(body), 0o600))
}

func TestResolveReadsNamedContextAndFlagsWin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeContext(t, dir, "prod", `{"description":"prod","url":"nats://prod:4222","user":"ops","password":"pw","inbox_prefix":"_INBOX_ops"}`)
	writeContext(t, dir, "dev", `{"url":"nats://dev:4222"}`)

	o, err := Options{Context: "prod", ContextDir: dir}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "nats://prod:4222", o.Servers)
	require.Equal(t, "ops", o.User)
	require.Equal(t, "pw", o.Password)
	require.Equal(t, "_INBOX_ops", o.InboxPrefix)

	o, err = Options{Context: "prod", ContextDir: dir, User: "me", Servers: "nats://other:4222"}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "me", o.User)
	require.Equal(t, "nats://other:4222", o.Servers)

	_, err = Options{Context: "staging", ContextDir: dir}.Resolve()
	require.ErrorContains(t, err, `natscli context "staging" not found`)
	require.ErrorContains(t, err, "available: dev, prod")

	o, err = Options{}.Resolve()
	require.NoError(t, err)
	require.Equal(t, DefaultServer, o.Servers)

	_, err = Options{TLSCert: "c.pem"}.Resolve()
	require.ErrorContains(t, err, "give both")
}

func runAuthServer(t *testing.T, port int) *server.Server {
	return natstest.RunServer(t, func(o *server.Options) {
		o.JetStream = false
		o.Username, o.Password = "ops", "s3cret"
		if port != 0 {
			o.Port = port
		}
	})
}

func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	natstest.CheckFor(t, timeout, 10*time.Millisecond, fn)
}

func TestConnectWithUserPasswordAndStatusAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := runAuthServer(t, 0)
	status := NewStatus()
	url := srv.ClientURL()
	nc, err := Connect(context.Background(), Options{Servers: url, User: "ops", Password: "s3cret"}, nil, status)
	require.NoError(t, err)
	defer nc.Close()
	checkFor(t, 5*time.Second, func() error {
		if !status.Snapshot().Connected {
			return fmt.Errorf("not connected: %s", status.Snapshot().LastError)
		}
		return nil
	})
	require.NotContains(t, status.Snapshot().ServerURL, "s3cret")

	// The server goes away: the status says so and since when.
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	checkFor(t, 5*time.Second, func() error {
		if status.Snapshot().Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	down := status.Snapshot()
	require.NotEmpty(t, down.LastError)
	require.False(t, down.Since.IsZero())

	// It comes back on the same port: reconnected without intervention.
	runAuthServer(t, port)
	checkFor(t, 15*time.Second, func() error {
		if !status.Snapshot().Connected {
			return fmt.Errorf("not reconnected: %s", status.Snapshot().LastError)
		}
		return nil
	})
	require.Equal(t, uint64(1), status.Snapshot().Reconnects)
}

func TestConnectWithWrongPasswordReportsAuthorization(t *testing.T) {
	t.Parallel()
	srv := runAuthServer(t, 0)
	status := NewStatus()
	nc, err := Connect(context.Background(), Options{Servers: srv.ClientURL(), User: "ops", Password: "wrong"}, nil, status)
	if err == nil {
		defer nc.Close()
	}
	// With retry on failed connect the error surfaces either from Connect
	// or in the status; either way it names the cause.
	if err != nil {
		require.ErrorContains(t, err, "uthorization")
		return
	}
	checkFor(t, 5*time.Second, func() error {
		s := status.Snapshot()
		if s.Connected || !strings.Contains(strings.ToLower(s.LastError), "authorization") {
			return fmt.Errorf("status: %+v", s)
		}
		return nil
	})
}

func TestConnectWithToken(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, func(o *server.Options) { o.JetStream = false; o.Authorization = "tok3n" })
	status := NewStatus()
	nc, err := Connect(context.Background(), Options{Servers: srv.ClientURL(), Token: "tok3n"}, nil, status)
	require.NoError(t, err)
	defer nc.Close()
	checkFor(t, 5*time.Second, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected")
		}
		return nil
	})
}

func TestReconnectDelayBacksOffWithCap(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt < 20; attempt++ {
		d := reconnectDelay(attempt)
		require.Positive(t, d)
		require.LessOrEqual(t, d, 10*time.Second)
	}
	require.LessOrEqual(t, reconnectDelay(1), 250*time.Millisecond)
	require.GreaterOrEqual(t, reconnectDelay(10), 5*time.Second)
}
