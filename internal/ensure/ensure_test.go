package ensure

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

func TestEnsureRaisesAndNeverLowers(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	replicas := func(stream string) int {
		s, err := js.Stream(ctx, stream)
		require.NoError(t, err)
		return s.CachedInfo().Config.Replicas
	}

	// Created with what is asked.
	_, err = KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "b", Replicas: 3, History: 4})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("KV_b"))
	// A service asking for 1 (its default) does not lower it.
	_, err = KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "b", History: 1})
	require.NoError(t, err)
	s, err := js.Stream(ctx, "KV_b")
	require.NoError(t, err)
	require.Equal(t, 3, s.CachedInfo().Config.Replicas)
	require.Equal(t, int64(4), s.CachedInfo().Config.MaxMsgsPerSubject, "history is never lowered either")

	// An existing R1 bucket is raised when asked for 3, with a new TTL.
	_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "small"})
	require.NoError(t, err)
	_, err = KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "small", Replicas: 3, TTL: time.Hour})
	require.NoError(t, err)
	s, err = js.Stream(ctx, "KV_small")
	require.NoError(t, err)
	require.Equal(t, 3, s.CachedInfo().Config.Replicas)
	require.Equal(t, time.Hour, s.CachedInfo().Config.MaxAge)

	// Streams: created, raised, never lowered, else left as they are.
	require.NoError(t, Stream(ctx, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}))
	require.Equal(t, 1, replicas("S"))
	require.NoError(t, Stream(ctx, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3, MaxAge: time.Minute}))
	s, err = js.Stream(ctx, "S")
	require.NoError(t, err)
	require.Equal(t, 3, s.CachedInfo().Config.Replicas)
	require.Zero(t, s.CachedInfo().Config.MaxAge, "only replicas change")
	require.NoError(t, Stream(ctx, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 1}))
	require.Equal(t, 3, replicas("S"))

	// A subject a newer version captures is added, one already covered is not.
	require.NoError(t, Stream(ctx, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.x.>", "t.>"}}))
	s, err = js.Stream(ctx, "S")
	require.NoError(t, err)
	require.Equal(t, []string{"s.>", "t.>"}, s.CachedInfo().Config.Subjects)
}

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{">", "jetwatch.relay.>", true}, {"jetwatch.>", "jetwatch.relay.>", true}, {"jetwatch.relay.>", "jetwatch.relay.>", true},
		{"jetwatch.*.>", "jetwatch.relay.>", true}, {"jetwatch.relay", "jetwatch.relay.>", false}, {"$JS.EVENT.ADVISORY.STREAM.>", "jetwatch.relay.>", false},
		{"a.*", "a.b", true}, {"a.*", "a.>", false}, {"a.b", "a.*", false}, {"a.b.c", "a.b", false},
	} {
		require.Equal(t, c.want, covers(c.a, c.b), "%s covers %s", c.a, c.b)
	}
}
