package service

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/directget"
)

func TestProcessedLookupFindsRecordedKeysInOneBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{})
	kv, err := b.js.CreateKeyValue(b.ctx, jetstream.KeyValueConfig{Bucket: "processed"})
	require.NoError(t, err)
	p, err := newProcessedIDs(b.js, kv, 4)
	require.NoError(t, err)
	require.NotEmpty(t, p.direct, "the batched lookup is in use")
	require.NotNil(t, p.pub, "records are pipelined")
	// run sends the records of recordAsync.
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	go p.run(ctx)
	var batch []string
	for i := range 20 {
		key := fmt.Sprintf("worker.%02d", i)
		switch {
		case i%4 == 0:
			require.NoError(t, p.record(b.ctx, key, []byte("1")))
		case i%2 == 0:
			// Pipelined: done says when the bucket has it.
			stored := make(chan error, 1)
			p.recordAsync(key, []byte("1"), func(err error) { stored <- err })
			require.NoError(t, <-stored)
		}
		batch = append(batch, key)
	}
	require.NoError(t, kv.Delete(b.ctx, "worker.04"), "a deleted key is no record")
	direct, err := directget.NewClient(b.js.Conn())
	require.NoError(t, err)
	defer direct.Close() //nolint:errcheck // test
	found, err := p.lookupAll(b.ctx, direct, batch)
	require.NoError(t, err)
	for i := range 20 {
		key := fmt.Sprintf("worker.%02d", i)
		require.Equal(t, i%2 == 0 && i != 4, found[key], key)
	}
	found, err = p.lookupAll(b.ctx, direct, []string{"worker.99"})
	require.NoError(t, err, "none found is an answer, not an error")
	require.Empty(t, found)

	// Without a direct get, key by key, to the same answer.
	found, err = p.lookup(b.ctx, nil, batch)
	require.NoError(t, err)
	for i := range 20 {
		key := fmt.Sprintf("worker.%02d", i)
		require.Equal(t, i%2 == 0 && i != 4, found[key], key)
	}

	// One key alone, as a duplicate that waited for its id asks.
	seen, err := p.seen(ctx, "worker.02")
	require.NoError(t, err)
	require.True(t, seen)
	seen, err = p.seen(ctx, "worker.03")
	require.NoError(t, err)
	require.False(t, seen)
}
