package bulk

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// The environment of TestHelperBulkProcess, set by the test that starts it.
const (
	helperNATSEnv   = "JETWATCH_BULK_HELPER_NATS"   // server URL
	helperDBEnv     = "JETWATCH_BULK_HELPER_DB"     // SQLite file
	helperCreateEnv = "JETWATCH_BULK_HELPER_CREATE" // rate of a job to create, if set
)

// TestHelperBulkProcess is not a test of its own: it is the jetwatch
// process that TestBulkJobSurvivesSIGKILL starts (the test binary run
// again) and kills. It runs the dead-letter index and the bulk runner as
// serve does, optionally creates a job and prints its id, and waits to be
// killed.
func TestHelperBulkProcess(t *testing.T) {
	url, path := os.Getenv(helperNATSEnv), os.Getenv(helperDBEnv)
	if url == "" {
		t.Skip("run as a child process by TestBulkJobSurvivesSIGKILL")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	db, err := store.OpenFile(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	ix, err := index.New(nc, db, index.Config{})
	require.NoError(t, err)
	require.NoError(t, ix.Start(ctx))
	defer ix.Stop()
	r, err := redeliver.New(nc, db, redeliver.Config{})
	require.NoError(t, err)
	runner := NewRunner(js, query.New(db, js, ""), r, Config{Lease: time.Second, SaveEvery: 10 * time.Millisecond})
	defer runner.Stop()
	require.NoError(t, runner.Start(ctx))
	if rate := os.Getenv(helperCreateEnv); rate != "" {
		var perSec float64
		_, err := fmt.Sscan(rate, &perSec)
		require.NoError(t, err)
		job, err := runner.Create(ctx, Request{Filter: store.DeadLetterFilter{Stream: "ORDERS"}, RatePerSec: perSec, Actor: "ann"})
		require.NoError(t, err)
		fmt.Printf("job %s\n", job.ID)
	}
	<-ctx.Done()
}

// TestBulkJobSurvivesSIGKILL kills a jetwatch process (SIGKILL, no
// chance to clean up) part way through a bulk redelivery, starts another
// and counts what reached the target stream: every selected dead letter
// exactly once.
func TestBulkJobSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	b := setupDesk(t)
	const n = 400
	b.manyDeadLetters(t, n)
	env := append(os.Environ(), helperNATSEnv+"="+b.js.Conn().ConnectedUrl(), helperDBEnv+"="+b.db.Path())
	start := func(extra ...string) (*exec.Cmd, *bufio.Scanner) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBulkProcess$", "-test.count=1")
		cmd.Env = append(env, extra...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			cmd.Process.Kill() //nolint:errcheck // gone already when the test went well
			cmd.Wait()         //nolint:errcheck // killed
		})
		return cmd, bufio.NewScanner(out)
	}
	// Only reads: this process runs no job.
	jobs := storedJobs{b.js}

	// Slow enough that the kill lands part way, whatever the machine.
	first, out := start(helperCreateEnv + "=200")
	require.True(t, out.Scan(), "the first jetwatch prints its job id")
	id, ok := strings.CutPrefix(out.Text(), "job ")
	require.True(t, ok, "unexpected output %q", out.Text())
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		job, err := jobs.Get(b.ctx, id)
		if err != nil {
			return err
		}
		if job.Sent < n/4 {
			return fmt.Errorf("%d/%d sent so far", job.Sent, job.Total)
		}
		return nil
	})
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	require.Error(t, first.Wait(), "killed")
	job, err := jobs.Get(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobRunning, job.State, "a killed jetwatch leaves its job running")
	sentBeforeKill := b.ordersCount(t)
	require.Less(t, sentBeforeKill, uint64(n), "killed part way")

	// The next jetwatch resumes the job once the dead one's lease lapses.
	start()
	job = waitJobDone(t, jobs, id, 60*time.Second)
	require.Equal(t, n, job.Sent)
	require.Zero(t, job.Failed)
	t.Logf("killed after %d of %d sends; the second jetwatch sent the rest", sentBeforeKill, n)

	// Count what arrived: each dead letter's payload exactly once.
	require.Equal(t, uint64(n), b.ordersCount(t))
	cons, err := b.js.OrderedConsumer(b.ctx, "ORDERS", jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	seen := map[string]int{}
	for len(seen) < n {
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			seen[string(m.Data())]++
			got++
		}
		require.NoError(t, batch.Error())
		require.NotZero(t, got, "%d of %d read", len(seen), n)
	}
	for i := range n {
		require.Equal(t, 1, seen[fmt.Sprintf(`{"n":%d}`, i)], "dead letter %d", i+1)
	}
}

// storedJobs reads jobs from the jobs bucket as a runner stores them,
// without running any.
type storedJobs struct{ js jetstream.JetStream }

func (s storedJobs) Get(ctx context.Context, id string) (Job, error) {
	kv, err := s.js.KeyValue(ctx, "jetwatch_bulk_jobs")
	if err != nil {
		return Job{}, err
	}
	e, err := kv.Get(ctx, id)
	if err != nil {
		return Job{}, err
	}
	var job Job
	return job, json.Unmarshal(e.Value(), &job)
}
