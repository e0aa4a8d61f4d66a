package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// While NATS is down, what needs it answers 503 at once, and nothing the
// operator was told failed is sent later; when the server is back,
// jetwatch is ready again within a few seconds.
func TestNATSOutageAnswersAtOnceAndRecoversQuickly(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	srv := natstest.RunServer(t, natstest.WithStoreDir(store), natstest.Restartable(t))
	port := srv.Addr().(*net.TCPAddr).Port
	env := func(k string) string { return map[string]string{"NATS_URL": srv.ClientURL()}[k] }
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	data := t.TempDir() // before the shutdown cleanup: removed after it
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--sample-interval", "1s"}, env, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	var base string
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		m := regexp.MustCompile(`dashboard: (http://[^/]+)/`).FindStringSubmatch(out.String())
		if m == nil {
			return errors.New("not serving yet")
		}
		base = m[1]
		return nil
	})
	call := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// A dead letter, indexed, whose origin stream exists.
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := js.Stream(ctx, "DLQ")
		return err
	})
	m := nats.NewMsg(dlq.Subject("ORDERS", "billing"))
	m.Data = []byte(`{"order":1}`)
	dlq.Envelope{Stream: "ORDERS", Consumer: "billing", Subject: "orders.created", Sequence: 1, Reason: dlq.ReasonError}.Apply(m.Header)
	_, err = js.PublishMsg(ctx, m)
	require.NoError(t, err)
	nc.Close()
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if code, body := call(http.MethodGet, "/api/v1/dead-letters/1", ""); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})

	srv.Shutdown()
	srv.WaitForShutdown()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if code, _ := call(http.MethodGet, "/readyz", ""); code != http.StatusServiceUnavailable {
			return fmt.Errorf("still ready: %d", code)
		}
		return nil
	})
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/dead-letters/1", ""},
		{http.MethodPost, "/api/v1/dead-letters/1/redeliver", "{}"},
		{http.MethodPost, "/api/v1/dead-letters/1/discard", "{}"},
	} {
		began := time.Now()
		code, body := call(r.method, r.path, r.body)
		t.Logf("%s %s while NATS is down: %d in %s", r.method, r.path, code, time.Since(began).Round(time.Millisecond))
		require.Equal(t, http.StatusServiceUnavailable, code, body)
	}

	down := time.Now()
	srv = natstest.RunServer(t, natstest.WithStoreDir(store), natstest.WithPort(port))
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if code, body := call(http.MethodGet, "/readyz", ""); code != http.StatusOK {
			return fmt.Errorf("not ready: %d %s", code, body)
		}
		return nil
	})
	t.Logf("ready again %s after the server came back", time.Since(down).Round(time.Millisecond))

	// Nothing refused while down was sent meanwhile, and it still can be.
	nc, err = nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err = jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	require.Zero(t, s.CachedInfo().State.Msgs)
	code, body := call(http.MethodPost, "/api/v1/dead-letters/1/redeliver", "{}")
	require.Equal(t, http.StatusOK, code, body)
}
