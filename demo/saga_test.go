package demo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/demo"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/store"
)

// TestOrderSaga runs the demo's workload and follows ORDERS and PAYMENTS
// as the demo does: an order whose payment went through crosses both
// streams and ships; one whose payment keeps failing (sg-000003: its
// payment is naked until MaxDeliver) is stuck. The demo's rules, its
// saga_stuck rule included, are valid.
func TestOrderSaga(t *testing.T) {
	t.Parallel()
	_, err := alert.Parse(demo.Rules("127.0.0.1:8080"), "demo rules", nil)
	require.NoError(t, err)

	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, collector.EnsureStreams(ctx, js, collector.StreamsConfig{}))
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	cs, err := journey.ParseCorrelations("order=header:X-Order-Id,order=json:order_id")
	require.NoError(t, err)
	ix, err := journey.NewIndex(js, db, journey.IndexConfig{Streams: func(s string) bool { return s == "ORDERS" || s == "PAYMENTS" },
		Correlations: cs, Discover: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, ix.Start(ctx))
	t.Cleanup(ix.Stop)
	r := journey.NewReader(db)
	// PAYMENTS is a work queue, followed live: the index must listen
	// before the workload publishes.
	for _, cfg := range demo.Streams {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		require.NoError(t, err)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if f := ix.Followed(); !slices.Equal(f, []string{"ORDERS", "PAYMENTS"}) {
			return fmt.Errorf("following %v", f)
		}
		return nil
	})
	w, err := demo.NewWorkload(nc, demo.WorkloadConfig{Speed: 10})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(w.Stop)

	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		j, err := r.Journey(ctx, "sg-000001")
		if err != nil {
			return err
		}
		var subjects []string
		for _, s := range j.Steps {
			subjects = append(subjects, s.Subject)
		}
		// The set, not the order: PAYMENTS is a work queue tapped live,
		// timed when jetwatch received the message, which on a loaded
		// machine can come after the shipment its handling caused.
		slices.Sort(subjects)
		if !slices.Equal(subjects, []string{"orders.placed", "orders.shipped", "payments.capture"}) {
			return fmt.Errorf("sg-000001 went %v", subjects)
		}
		if len(j.TraceIDs) != 1 || !slices.Equal(j.Streams, []string{"ORDERS", "PAYMENTS"}) {
			return fmt.Errorf("sg-000001: traces %v, streams %v", j.TraceIDs, j.Streams)
		}
		return nil
	})
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		stuck, err := r.Stuck(ctx, "order", "orders.placed", []string{"orders.shipped", "orders.cancelled"}, 0, time.Hour, time.Now(), 100)
		if err != nil {
			return err
		}
		var keys []string
		for _, s := range stuck {
			keys = append(keys, s.Key)
		}
		if !slices.Contains(keys, "sg-000003") || slices.Contains(keys, "sg-000001") {
			return fmt.Errorf("stuck: %v", keys)
		}
		return nil
	})
}
