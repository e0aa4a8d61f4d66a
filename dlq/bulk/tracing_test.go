package bulk

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/internal/otlptest"
	"github.com/jetwatch/jetwatch/internal/telemetry"
	"github.com/jetwatch/jetwatch/store"
)

// originalTrace is the trace of the failed message the desk's dead letters
// carry (see deadLetter).
const originalTrace = "0af7651916cd43dd8448eb211c80319c"

// tracedRedeliverer is a Redeliverer on b's connection exporting spans to
// a receiver; flush exports what is queued.
func tracedRedeliverer(t *testing.T, b *deskBundle) (r *redeliver.Redeliverer, tr *telemetry.Tracing, recv *otlptest.Receiver, flush func()) {
	t.Helper()
	recv = otlptest.Start(t)
	tr, err := telemetry.New(b.ctx, telemetry.Config{Env: recv.Env(nil)})
	require.NoError(t, err)
	r, err = redeliver.New(b.js.Conn(), b.db, redeliver.Config{TracerProvider: tr.Provider()})
	require.NoError(t, err)
	return r, tr, recv, func() { require.NoError(t, tr.Shutdown(context.Background())) }
}

func TestBulkChunkSpansHoldASpanPerDeadLetter(t *testing.T) {
	t.Parallel()
	b := setupDesk(t)
	r, tr, recv, flush := tracedRedeliverer(t, b)
	for range 3 {
		b.deadLetter(t, `{"order":"ord-1"}`, false)
	}
	runner := NewRunner(b.js, b.q, r, Config{TracerProvider: tr.Provider()})
	t.Cleanup(runner.Stop)
	require.NoError(t, runner.Start(b.ctx))
	job, err := runner.Create(b.ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, Actor: "ann"})
	require.NoError(t, err)
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		j, err := runner.Get(b.ctx, job.ID)
		if err != nil || j.State != JobDone {
			return fmt.Errorf("job %+v, %v", j, err)
		}
		return nil
	})
	require.Equal(t, uint64(3), b.ordersCount(t))
	flush()

	chunks, redeliveries := recv.Named(spanChunk), recv.Named("redeliver dead letter")
	require.Len(t, chunks, 1, recv.Names())
	require.Len(t, redeliveries, 3, recv.Names())
	chunk := chunks[0]
	require.Equal(t, job.ID, chunk.Attributes["jetwatch.bulk.job"])
	require.Equal(t, "3", chunk.Attributes["jetwatch.bulk.sent"])
	for _, s := range redeliveries {
		require.Equal(t, chunk.TraceID, s.TraceID)
		require.Equal(t, chunk.SpanID, s.ParentSpanID, "each redelivery is a child of its chunk")
		require.Equal(t, []string{originalTrace + "-b7ad6b7169203331"}, s.Links)
		require.Equal(t, "sent", s.Attributes["jetwatch.result"])
	}
}
