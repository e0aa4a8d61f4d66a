package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/service"
)

// Every stream and bucket jetwatch creates has --stream-replicas, and a
// service starting afterwards does not lower the breakers bucket.
func TestEverythingJetwatchCreatesHonoursStreamReplicas(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	env := func(k string) string { return map[string]string{"NATS_URL": c.URLs()}[k] }
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	data := t.TempDir() // before the shutdown cleanup: removed after it
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--stream-replicas", "3"}, env, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	nc, err := nats.Connect(c.URLs())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	want := []string{"JETWATCH_ADVISORIES", "DLQ", "JETWATCH_DLQ_ACTIONS", "JETWATCH_AUDIT", "KV_jetwatch_bulk_jobs", "KV_jetwatch_breakers"}
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		for _, name := range want {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if r := s.CachedInfo().Config.Replicas; r != 3 {
				return fmt.Errorf("%s has %d replicas", name, r)
			}
		}
		return nil
	})

	// A service reporting breakers asks for the bucket with its defaults.
	_, err = service.NewBreaker(ctx, js, "billing", service.BreakerConfig{Name: "psp"})
	require.NoError(t, err)
	s, err := js.Stream(ctx, "KV_jetwatch_breakers")
	require.NoError(t, err)
	require.Equal(t, 3, s.CachedInfo().Config.Replicas)
}
