package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// count says how many logged lines contain s.
func (b *syncBuffer) count(s string) int {
	return strings.Count(b.String(), s)
}

// TestSamplerWithANodeDown crashes one node of three (its peers are not
// told, as with a SIGKILL) and checks that every cycle stays within its
// bound and shows what it could not read instead of dropping it; then
// brings the node back, and finally crashes the meta leader.
func TestSamplerWithANodeDown(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3, natstest.WithSystemAccount(t))
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sys, err := nats.Connect(c.URLs(), nats.UserInfo("sys", "sys"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(sys.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()

	// The victim does not lead the meta group: this is about losing a
	// node that holds data, with the JetStream API still up.
	victim, metaLeader := -1, -1
	for i, n := range c.Nodes {
		if n.JetStreamIsLeader() {
			metaLeader = i
		} else if victim < 0 {
			victim = i
		}
	}
	require.True(t, victim >= 0 && metaLeader >= 0)
	victimName := c.Nodes[victim].Name()
	on := func(i int) *jetstream.Placement {
		return &jetstream.Placement{Tags: []string{"node:" + c.Nodes[i].Name()}}
	}
	orders, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
	require.NoError(t, err)
	// billing has nothing to do (nothing is published on its subject):
	// with messages waiting and nobody consuming, it would be stopped.
	_, err = orders.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: "orders.paid"})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAYMENTS", Subjects: []string{"payments.>"}, Replicas: 3})
	require.NoError(t, err)
	solo, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SOLO", Subjects: []string{"solo.>"}, Replicas: 1, Placement: on(victim)})
	require.NoError(t, err)
	_, err = solo.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "solo-reader", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "SAFE", Subjects: []string{"safe.>"}, Replicas: 1, Placement: on(metaLeader)})
	require.NoError(t, err)
	publish(t, js, "orders.new", 5)
	publish(t, js, "solo.x", 3)

	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	logs := &syncBuffer{}
	const cycleTimeout = 5 * time.Second
	s, err := NewSampler(nc, db, SamplerConfig{
		Interval: time.Second, CycleTimeout: cycleTimeout, RequestTimeout: 2 * time.Second, SystemConn: sys,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)

	// bound is the most a cycle may take: its reading is cut at
	// cycleTimeout, then what was read is judged and stored.
	const bound = cycleTimeout + time.Second
	var durations []time.Duration
	sample := func(t *testing.T) {
		t.Helper()
		// jetwatch's own connection may have been on the node that went:
		// what a cycle does while it reconnects is another matter.
		natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !nc.IsConnected() || !sys.IsConnected() {
				return fmt.Errorf("reconnecting")
			}
			return nil
		})
		before := s.State().LastCycleAt
		start := time.Now()
		_, err := s.SampleOnce(ctx)
		require.NoError(t, err, "a cycle with a node down still stores what it read")
		st := s.State()
		require.True(t, st.LastCycleAt.After(before))
		require.Less(t, st.LastDuration, bound, "cycle took %s (%s by the wall clock)", st.LastDuration, time.Since(start))
		durations = append(durations, st.LastDuration.Round(time.Millisecond))
	}
	streams := func(t *testing.T) map[string]store.Stream {
		t.Helper()
		sts, err := db.Streams(ctx)
		require.NoError(t, err)
		out := map[string]store.Stream{}
		for _, st := range sts {
			out[st.Name] = st
		}
		require.Len(t, out, 4, "every stream is listed, read or not")
		return out
	}
	servers := func(t *testing.T) map[string]store.Server {
		t.Helper()
		srvs, err := db.Servers(ctx)
		require.NoError(t, err)
		out := map[string]store.Server{}
		for _, srv := range srvs {
			out[srv.Name] = srv
		}
		require.Len(t, out, 3, "every server is listed, answering or not")
		return out
	}

	// A cluster just formed may still be electing leaders and catching up
	// replicas (slowly on a loaded machine): sample until it is whole.
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		if _, err := s.SampleOnce(ctx); err != nil {
			return err
		}
		sts, err := db.Streams(ctx)
		if err != nil {
			return err
		}
		if len(sts) != 4 {
			return fmt.Errorf("%d streams sampled", len(sts))
		}
		for _, st := range sts {
			if st.Unread != nil || st.Health.Level != store.HealthOK {
				return fmt.Errorf("%s: %v %v", st.Name, st.Health.Level, st.Health.Reasons)
			}
		}
		srvs, err := db.Servers(ctx)
		if err != nil {
			return err
		}
		if len(srvs) != 3 {
			return fmt.Errorf("%d servers sampled", len(srvs))
		}
		// A server's report can miss its deadline on a loaded machine,
		// which is "down" for that cycle: whole means every one answered.
		for _, srv := range srvs {
			if srv.DownSince != nil {
				return fmt.Errorf("server %s did not answer: %v", srv.Name, srv.Health.Reasons)
			}
		}
		return nil
	})
	durations = nil

	t.Run("a node crashes", func(t *testing.T) {
		c.Kill(victim)
		natstest.CheckFor(t, 90*time.Second, 10*time.Millisecond, func() error {
			sample(t)
			sts := streams(t)
			soloRow := sts["SOLO"]
			if soloRow.Unread == nil {
				return fmt.Errorf("SOLO was read")
			}
			if o := sts["ORDERS"]; !replicaOffline(o, victimName) || o.Health.Level != store.HealthCritical {
				return fmt.Errorf("ORDERS: replica %s not offline yet: %+v %v", victimName, o.Cluster, o.Health.Reasons)
			}
			if p := sts["PAYMENTS"]; !replicaOffline(p, victimName) {
				return fmt.Errorf("PAYMENTS: replica %s not offline yet: %+v", victimName, p.Cluster)
			}
			if srv := servers(t)[victimName]; srv.DownSince == nil {
				return fmt.Errorf("server %s not down yet", victimName)
			}
			return nil
		})
		t.Logf("cycles with %s down took %v", victimName, durations)

		sts := streams(t)
		soloRow := sts["SOLO"]
		require.Equal(t, store.HealthCritical, soloRow.Health.Level)
		require.Contains(t, []string{store.UnreadNoLeader, store.UnreadNoResponse}, soloRow.Unread.Why)
		require.Equal(t, uint64(3), soloRow.Messages, "the last numbers read are kept")
		require.NotNil(t, soloRow.Unread.ReadAt)
		require.Contains(t, soloRow.Health.Reasons[0], soloRow.Unread.Why+": ")
		require.Contains(t, soloRow.Health.Reasons[0], "numbers last read")
		soloReader, err := db.Consumer(ctx, "SOLO", "solo-reader")
		require.NoError(t, err, "the consumers of an unread stream are kept too")
		require.NotNil(t, soloReader.Unread)
		require.Equal(t, store.HealthCritical, soloReader.Health.Level)

		ordersReasons := strings.Join(sts["ORDERS"].Health.Reasons, "; ")
		require.Regexp(t, "replica "+victimName+" is offline: (last seen|not seen since its leader was elected) [0-9.]+s ago", ordersReasons)
		require.NotContains(t, ordersReasons, "0 operations behind")
		for _, name := range []string{"ORDERS", "PAYMENTS", "SAFE"} {
			require.Nil(t, sts[name].Unread, name)
		}
		srvs := servers(t)
		require.Equal(t, store.HealthCritical, srvs[victimName].Health.Level)
		require.Contains(t, srvs[victimName].Health.Reasons[0], "down: no answer since")
		require.NotEmpty(t, srvs[victimName].Version, "a down server keeps what it said last")

		// Prometheus gets SOLO's health, and no old numbers as new ones.
		var metrics strings.Builder
		require.NoError(t, s.WriteMetrics(&metrics, false, nil))
		require.Regexp(t, `jetwatch_stream_health\{[^}]*stream_name="SOLO",[^}]*\} 2\n`, metrics.String())
		require.NotRegexp(t, `jetstream_stream_total_messages\{[^}]*stream_name="SOLO"`, metrics.String())
		require.Regexp(t, `jetstream_stream_total_messages\{[^}]*stream_name="ORDERS"`, metrics.String())

		// Logged once when it started, naming what and why; a cycle with
		// the same trouble does not log it again.
		require.Contains(t, logs.b.String(), "stream SOLO: "+soloRow.Unread.Why)
		require.Positive(t, logs.count("sample cycle partial"))
		// Under load a cycle may also time out on a live node, which is
		// new trouble and is logged; so look for a cycle whose trouble is
		// the last one's, and check that it logged nothing.
		same := 0
		natstest.CheckFor(t, 60*time.Second, 0, func() error {
			warned, trouble := logs.count("sample cycle partial"), s.partial
			sample(t)
			if s.partial != trouble {
				return fmt.Errorf("the trouble changed from %q to %q", trouble, s.partial)
			}
			require.Equal(t, warned, logs.count("sample cycle partial"), "the same trouble is not logged again")
			if same++; same < 2 {
				return fmt.Errorf("one cycle with the same trouble, want two")
			}
			return nil
		})
		require.Contains(t, strings.Join(s.State().Errors, "\n"), "stream SOLO: "+soloRow.Unread.Why)
	})

	t.Run("it comes back", func(t *testing.T) {
		durations = nil
		c.Start(victim)
		natstest.CheckFor(t, 90*time.Second, 10*time.Millisecond, func() error {
			sample(t)
			for name, st := range streams(t) {
				if st.Unread != nil || st.Health.Level != store.HealthOK {
					return fmt.Errorf("%s: %v", name, st.Health.Reasons)
				}
			}
			if srv := servers(t)[victimName]; srv.DownSince != nil {
				return fmt.Errorf("server %s still down", victimName)
			}
			// Its return can cost the cluster its meta leader for a
			// moment (listings then answer 503): back means a cycle
			// that read everything.
			if errs := s.State().Errors; len(errs) > 0 {
				return fmt.Errorf("cycle still partial: %v", errs)
			}
			return nil
		})
		t.Logf("cycles while %s came back took %v", victimName, durations)
		require.Equal(t, 1, logs.count("sample cycle complete again"))
		st := streams(t)["SOLO"]
		require.Equal(t, uint64(3), st.Messages)
	})

	t.Run("the meta leader crashes", func(t *testing.T) {
		durations = nil
		leader := -1
		for i, n := range c.Nodes {
			if n.JetStreamIsLeader() {
				leader = i
			}
		}
		require.GreaterOrEqual(t, leader, 0)
		leaderName := c.Nodes[leader].Name()
		c.Kill(leader)
		// Until a new meta leader is elected, streams cannot be listed:
		// those known are read one by one and none is dropped (streams(t)
		// checks every cycle).
		natstest.CheckFor(t, 90*time.Second, 10*time.Millisecond, func() error {
			sample(t)
			sts := streams(t)
			elected := false
			for _, n := range c.Nodes {
				elected = elected || (n != nil && n.JetStreamIsLeader())
			}
			switch {
			case !elected:
				return fmt.Errorf("no new meta leader yet")
			case sts["ORDERS"].Unread != nil || sts["ORDERS"].Cluster == nil || sts["ORDERS"].Cluster.Leader == "":
				return fmt.Errorf("ORDERS not read yet: %v", sts["ORDERS"].Health.Reasons)
			case sts["SAFE"].Unread == nil:
				return fmt.Errorf("SAFE, on %s, still read", leaderName)
			case servers(t)[leaderName].DownSince == nil:
				return fmt.Errorf("server %s not down yet", leaderName)
			}
			return nil
		})
		t.Logf("cycles while the meta leader was replaced took %v", durations)
	})
}

// replicaOffline says whether st shows its replica on server as offline.
func replicaOffline(st store.Stream, server string) bool {
	if st.Cluster == nil {
		return false
	}
	for _, r := range st.Cluster.Replicas {
		if r.Name == server {
			return r.Offline
		}
	}
	return false
}
