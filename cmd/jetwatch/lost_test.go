package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// nats.go never reconnects a connection the server closed for good (here:
// the credentials stopped working, and the server rejected them twice).
// jetwatch does not linger answering 503 to everything: it exits with an
// error that says why, so its supervisor starts it again.
func TestServeExitsWhenNATSClosesTheConnectionForGood(t *testing.T) {
	t.Parallel()
	var started *server.Options
	srv := natstest.RunServer(t, func(o *server.Options) { o.Username, o.Password, started = "jw", "first", o })
	env := func(k string) string {
		return map[string]string{"NATS_URL": srv.ClientURL(), "NATS_USER": "jw", "NATS_PASSWORD": "first"}[k]
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	out := &syncBuffer{}
	done := make(chan error, 1)
	data := t.TempDir() // before the shutdown cleanup: removed after it
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, env, out)
	}()
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !regexp.MustCompile(`nats connected`).MatchString(out.String()) {
			return errors.New("not connected yet")
		}
		return nil
	})

	opts := started.Clone()
	opts.Password = "rotated"
	require.NoError(t, srv.ReloadOptions(opts))
	select {
	case err := <-done:
		require.ErrorContains(t, err, "closed for good")
		require.Contains(t, strings.ToLower(err.Error()), "authorization violation")
		require.Contains(t, out.String(), "exiting so that a supervisor starts jetwatch again")
	case <-time.After(60 * time.Second):
		t.Fatalf("jetwatch kept running on a closed connection:\n%s", out.String())
	}
}
