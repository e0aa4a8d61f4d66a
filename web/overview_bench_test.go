package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkOverview renders the overview of 1,000 and of 10,000 streams
// with 10 consumers each from a real SQLite file. The overview is meant to
// stay under 100 ms and 200 KB at 10,000 × 10; html-bytes is its size.
// all-stalled is the worst day: every stream critical and every consumer
// stalled with the same backlog, so its triage and largest backlogs are
// chosen from 100,000 ties.
//
//	go test -tags sqlite_fts5 -run '^$' -bench 'BenchmarkOverview$' -benchtime 20x ./web/
func BenchmarkOverview(b *testing.B) {
	for _, streams := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("streams=%d,consumers=10", streams), func(b *testing.B) { benchmarkOverview(b, streams, 10, nil, "/") })
	}
	b.Run("streams=10000,consumers=10,all-stalled", func(b *testing.B) {
		benchmarkOverviewOf(b, func(at time.Time, step uint64) store.Cycle {
			c := largeCycle(at, 10_000, 10, step)
			for i := range c.Streams {
				c.Streams[i].Health.Raise(store.HealthCritical, "consumer worker_00: stalled")
			}
			for i := range c.Consumers {
				cs := &c.Consumers[i]
				since := at.Add(-10 * time.Minute)
				cs.NumPending, cs.LagState, cs.Stalled, cs.StalledSince = 24, store.LagStalled, true, &since
				cs.Health = store.Health{Level: store.HealthCritical, Reasons: []string{"stalled: 24 pending and nothing acknowledged for 10m"}}
			}
			return c
		}, nil, "/")
	})
}

// BenchmarkOverviewEveryAccount renders the overview with --all-accounts:
// 10,000 streams × 10 consumers of jetwatch's own in SQLite and as many
// again in 4 other accounts in memory, every account (page 1 and a deep
// page, whose merge reads more of SQLite, in the default order, by name
// and by rate, read from the JSON) and one other account.
func BenchmarkOverviewEveryAccount(b *testing.B) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var accounts []store.Account
	for a := range 4 {
		c := largeCycle(now, 2500, 10, 1)
		accounts = append(accounts, store.Account{Name: fmt.Sprintf("TEAM_%d", a), ID: fmt.Sprintf("A%d", a),
			Streams: c.Streams, Consumers: c.Consumers, SampledAt: now, Health: store.Health{Level: store.HealthOK}})
	}
	for _, target := range []string{"/", "/?page=300", "/?page=300&sort=name", "/?page=300&sort=rate", "/?account=TEAM_2"} {
		b.Run("target="+target, func(b *testing.B) { benchmarkOverview(b, 10_000, 10, accounts, target) })
	}
}

func benchmarkOverview(b *testing.B, streams, consumersPer int, accounts []store.Account, target string) {
	benchmarkOverviewOf(b, func(at time.Time, step uint64) store.Cycle { return largeCycle(at, streams, consumersPer, step) },
		accounts, target)
}

func benchmarkOverviewOf(b *testing.B, cycle func(at time.Time, step uint64) store.Cycle, accounts []store.Account, target string) {
	ctx := context.Background()
	db, err := store.OpenFile(ctx, filepath.Join(b.TempDir(), "jetwatch.db"))
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{now.Add(-10 * time.Second), now} {
		require.NoError(b, db.SaveCycle(ctx, cycle(at, uint64(i))))
	}
	srv, err := New(Config{
		Index: db,
		NATSState: func() NATSState {
			return NATSState{Connected: true, Since: now.Add(-time.Hour), Server: "nats://nats:4222"}
		},
		SamplerState: func() store.SamplerState {
			return store.SamplerState{FirstCycleDone: true, LastCycleAt: now, LastDuration: 600 * time.Millisecond,
				Account: "APP", AllAccounts: accounts != nil, Accounts: accounts}
		},
		Gatherer: prometheus.NewRegistry(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return now },
	})
	require.NoError(b, err)
	h := srv.Handler()
	size := 0
	cpu0 := processCPU()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("overview: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "html-bytes")
	// On a shared machine the wall time above includes waiting for the
	// CPU; the process's own CPU time per render says what it costs.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// largeCycle is one sample of a big deployment: R3 streams with limits and
// a few unhealthy ones, each with consumers of which some fall behind
// (1 in 97) or stall (1 in 211).
func largeCycle(at time.Time, streams, consumersPer int, step uint64) store.Cycle {
	c := store.Cycle{At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{}}
	for i := range streams {
		name := fmt.Sprintf("ORDERS_%04d", i)
		pct := float64(i%100) + 0.5
		st := store.Stream{
			Name: name, Subjects: []string{"orders." + name + ".>"}, Retention: "limits", Storage: "file", Replicas: 3,
			Created: at.Add(-72 * time.Hour), Messages: 100_000 + uint64(i)*10 + step*50, Bytes: 64_000_000 + uint64(i),
			FirstSeq: 1, LastSeq: 100_000 + uint64(i)*10 + step*50, NumSubjects: 12, ConsumerCount: consumersPer,
			Limits: store.StreamLimits{MaxMsgs: 1_000_000, MaxBytes: -1, MaxAgeSeconds: 86400, MaxMsgSize: -1,
				MaxMsgsPerSubject: -1, MaxConsumers: -1, Discard: "old", MsgsUsedPct: &pct},
			Cluster: &store.Cluster{Name: "c1", Leader: "n1", Replicas: []store.Replica{
				{Name: "n2", Current: true, ActiveSeconds: 0.2}, {Name: "n3", Current: true, ActiveSeconds: 0.3}}},
			InPerSec: 5, BytesInPerSec: 3200, Health: store.Health{Level: store.HealthOK}, SampledAt: at,
			Config: json.RawMessage(`{"name":"` + name + `","subjects":["orders.` + name + `.>"],"retention":"limits","max_msgs":1000000,"num_replicas":3}`),
		}
		switch i % 50 {
		case 7:
			st.Health.Raise(store.HealthWarning, "replica n3 is 1200 operations behind")
		case 13:
			st.Health.Raise(store.HealthCritical, "no leader: the stream cannot accept messages")
		}
		c.Streams = append(c.Streams, st)
		c.ConsumersComplete[name] = true
		for j := range consumersPer {
			cs := store.Consumer{
				Stream: name, Name: fmt.Sprintf("worker_%02d", j), Durable: true, Created: at.Add(-72 * time.Hour),
				FilterSubjects: []string{"orders." + name + ".created"}, DeliverPolicy: "all", AckPolicy: "explicit",
				ReplayPolicy: "instant", MaxDeliver: 5, AckWaitSeconds: 30, MaxAckPending: 1000,
				NumPending: uint64((i*consumersPer + j) % 997), NumAckPending: j, NumRedelivered: j % 3,
				Delivered:       store.SequencePair{ConsumerSeq: 90_000 + step*40, StreamSeq: 90_000 + step*40},
				AckFloor:        store.SequencePair{ConsumerSeq: 89_990 + step*40, StreamSeq: 89_990 + step*40},
				DeliveredPerSec: 4, AckedPerSec: 4, Health: store.Health{Level: store.HealthOK}, SampledAt: at,
				Config: json.RawMessage(`{"durable_name":"worker","ack_policy":"explicit","max_deliver":5}`),
			}
			switch n := i*consumersPer + j; {
			case n%211 == 0:
				since := at.Add(-10 * time.Minute)
				cs.LagState, cs.Stalled, cs.StalledSince = store.LagStalled, true, &since
				cs.Health.Raise(store.HealthCritical, "stalled: 12 unacknowledged and nothing acknowledged for 10m although messages are delivered")
			case n%97 == 0:
				cs.LagState, cs.ArrivalPerSec, cs.AckPerSec = store.LagFallingBehind, 6, 4
				cs.Health.Raise(store.HealthWarning, "falling behind: 900 pending and rising (6/s arriving, 4/s acknowledged, over the last 1m)")
			default:
				cs.LagState = store.LagOK
			}
			c.Consumers = append(c.Consumers, cs)
		}
	}
	return c
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
