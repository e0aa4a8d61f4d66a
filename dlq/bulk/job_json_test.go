package bulk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/logtest"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// TestAJobFromANewerJetwatchIsKeptAndLeftToIt: in a rolling upgrade, a
// job a newer jetwatch wrote with fields this one does not know (a
// narrower filter, a way to run it) is never run here (acting on part of
// its filter would act on more than was previewed), and a change made
// here (a pause) keeps those fields.
func TestAJobFromANewerJetwatchIsKeptAndLeftToIt(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	b.manyDeadLetters(t, 5)
	kv, err := b.js.CreateKeyValue(b.ctx, jetstream.KeyValueConfig{Bucket: "jetwatch_bulk_jobs"})
	require.NoError(t, err)
	now := time.Now().UTC()
	id := randomID()
	known, err := json.Marshal(Job{ID: id, Filter: store.DeadLetterFilter{Stream: "ORDERS", Status: store.StatusPending},
		Action: "redeliver", MaxID: 5, State: JobRunning, Total: 5, Actor: "ann", CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(known, &raw))
	raw["priority"] = 3
	raw["filter"].(map[string]any)["service"] = "notifier"
	newer, err := json.Marshal(raw)
	require.NoError(t, err)
	_, err = kv.Put(b.ctx, id, newer)
	require.NoError(t, err)

	logger, logs := logtest.New()
	r := NewRunner(b.js, b.q, b.r, Config{Lease: 300 * time.Millisecond, SaveEvery: 20 * time.Millisecond, Logger: logger})
	t.Cleanup(r.Stop)
	require.NoError(t, r.Start(b.ctx))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "bulk job left to a newer jetwatch") {
			return errors.New("not looked at yet")
		}
		return nil
	})
	require.Contains(t, logs.String(), `fields="[priority filter.service]"`)
	require.Zero(t, b.ordersCount(t), "nothing was sent")
	job, err := r.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobRunning, job.State, "left running, for a newer replica")
	require.Empty(t, job.Owner)

	_, err = r.Pause(b.ctx, id)
	require.NoError(t, err)
	e, err := kv.Get(b.ctx, id)
	require.NoError(t, err)
	var stored map[string]any
	require.NoError(t, json.Unmarshal(e.Value(), &stored))
	require.Equal(t, JobPaused, stored["state"])
	require.Equal(t, 3.0, stored["priority"], "kept through the pause")
	require.Equal(t, "notifier", stored["filter"].(map[string]any)["service"])
	require.Equal(t, "ORDERS", stored["filter"].(map[string]any)["stream"])
}
