package store

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchCycle is a cycle of streams x consumers shaped like the sampler's:
// configs, cluster-less health, sequences that move every cycle.
func benchCycle(at time.Time, streams, consumers int) Cycle {
	c := Cycle{At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{}}
	streamConfig := json.RawMessage(`{"name":"BENCH_0000","subjects":["bench.0.>"],"retention":"limits","max_consumers":-1,"max_msgs":100000,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"consumer_limits":{}}`)
	consumerConfig := json.RawMessage(`{"durable_name":"c00","name":"c00","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0}`)
	for i := range streams {
		name := fmt.Sprintf("BENCH_%04d", i)
		msgs := uint64(at.Unix() % 100_000)
		c.Streams = append(c.Streams, Stream{
			Name: name, Subjects: []string{fmt.Sprintf("bench.%d.>", i)}, Retention: "limits", Storage: "file", Replicas: 1,
			Created: at.Add(-time.Hour), Messages: msgs, Bytes: msgs * 40, FirstSeq: 1, LastSeq: msgs,
			ConsumerCount: consumers, Limits: StreamLimits{MaxMsgs: 100_000, MaxBytes: -1, MaxMsgsPerSubject: -1, MaxConsumers: -1, Discard: "old"},
			Health: Health{Level: HealthOK}, SampledAt: at, Config: streamConfig, InPerSec: 1.5,
		})
		c.ConsumersComplete[name] = true
		for j := range consumers {
			last := at.Add(-time.Second)
			c.Consumers = append(c.Consumers, Consumer{
				Stream: name, Name: fmt.Sprintf("c%02d", j), Durable: true, Created: at.Add(-time.Hour),
				DeliverPolicy: "all", AckPolicy: "explicit", ReplayPolicy: "instant", MaxDeliver: -1, AckWaitSeconds: 30, MaxAckPending: 1000,
				NumPending: msgs / 2, NumAckPending: 3, Delivered: SequencePair{ConsumerSeq: msgs / 2, StreamSeq: msgs / 2, LastActive: &last},
				AckFloor: SequencePair{ConsumerSeq: msgs/2 - 3, StreamSeq: msgs/2 - 3, LastActive: &last}, DeliveredPerSec: 1.5, AckedPerSec: 1.5,
				Health: Health{Level: HealthOK}, SampledAt: at, Config: consumerConfig,
			})
		}
	}
	return c
}

// fillHistory writes cycles raw samples of every stream and consumer of c,
// one every 10 seconds before c.At, straight into the tables: through
// SaveCycle it would take most of the benchmark's time.
func fillHistory(tb testing.TB, db *DB, c Cycle, cycles int) {
	tb.Helper()
	tx, err := db.sql.Begin()
	require.NoError(tb, err)
	defer tx.Rollback() //nolint:errcheck // after Commit
	insStream, err := tx.Prepare(`INSERT INTO stream_samples (stream, res, ts, messages, bytes, first_seq, last_seq, deleted, consumers)
		VALUES (?, 0, ?, 5, 500, 1, 5, 0, 10)`)
	require.NoError(tb, err)
	// Packed as SaveCycle packs them: a stream's consumers in a row.
	insConsumer, err := tx.Prepare(`INSERT INTO consumer_samples (res, ts, stream, first, consumers) VALUES (0, ?, ?, '', ?)`)
	require.NoError(tb, err)
	packed := map[string][]byte{}
	for i := range c.Consumers {
		cs := &c.Consumers[i]
		b := packed[cs.Stream]
		if len(b) > 0 {
			b = append(b, ',')
		}
		packed[cs.Stream] = append(appendString(b, cs.Name), ":[5,1,0,0,5,4]"...)
	}
	for k := cycles; k > 0; k-- {
		ts := c.At.Add(-time.Duration(k) * 10 * time.Second).UnixMilli()
		for i := range c.Streams {
			_, err := insStream.Exec(c.Streams[i].Name, ts)
			require.NoError(tb, err)
		}
		for stream, b := range packed {
			_, err := insConsumer.Exec(ts, stream, "{"+string(b)+"}")
			require.NoError(tb, err)
		}
		require.NoError(tb, recordSampleTime(context.Background(), tx, ts, 0))
	}
	require.NoError(tb, tx.Commit())
}

// BenchmarkSaveCycle stores one sample cycle: 10,000 streams x 10
// consumers into an empty index, and 1,000 x 10 into one holding an hour
// of history (360 cycles), where each consumer's samples no longer share
// a page with another's.
//
//	go test -tags sqlite_fts5 -run xxx -bench SaveCycle -benchtime 5x ./store
func BenchmarkSaveCycle(b *testing.B) {
	for _, bc := range []struct{ streams, consumers, history int }{
		{1000, 10, 0},
		{10000, 10, 0},
		{1000, 10, 360},
	} {
		b.Run(fmt.Sprintf("streams=%d/consumers=%d/history=%d", bc.streams, bc.consumers, bc.history), func(b *testing.B) {
			db, err := Open(context.Background(), b.TempDir())
			require.NoError(b, err)
			defer db.Close()
			c := benchCycle(time.Now().Truncate(time.Second), bc.streams, bc.consumers)
			fillHistory(b, db, c, bc.history)
			require.NoError(b, db.SaveCycle(context.Background(), c))
			cpu0 := cpuTime()
			for b.Loop() {
				c.At = c.At.Add(10 * time.Second)
				if err := db.SaveCycle(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
			// On a machine shared with other work the wall time says more
			// about the others than about this: CPU time is reported too.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecentConsumerSamples reads what a restart seeds the lag
// windows from at 10,000 streams x 10 consumers: the last 5 minutes of
// samples (30 cycles, 3,000,000 samples), of a day's worth of times.
//
//	go test -tags sqlite_fts5 -run xxx -bench RecentConsumerSamples -benchtime 3x ./store
func BenchmarkRecentConsumerSamples(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir())
	require.NoError(b, err)
	defer db.Close()
	c := benchCycle(time.Now().Truncate(time.Second), 10000, 10)
	require.NoError(b, db.SaveCycle(ctx, c))
	fillHistory(b, db, c, 30)
	cpu0 := cpuTime()
	for b.Loop() {
		n := 0
		require.NoError(b, db.RecentConsumerSamples(ctx, c.At.Add(-5*time.Minute), func(string, string, ConsumerPoint) { n++ }))
		if n != 31*len(c.Consumers) {
			b.Fatalf("%d samples, want %d", n, 31*len(c.Consumers))
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkCompact downsamples 5 minutes of raw history (30 cycles) of
// 10,000 streams x 10 consumers into five-minute buckets: what the
// sampler's compaction, every 5 minutes, does a day after the samples.
//
//	go test -tags sqlite_fts5 -run xxx -bench Compact -benchtime 3x ./store
func BenchmarkCompact(b *testing.B) {
	ctx := context.Background()
	ret, err := Retention{}.WithDefaults()
	require.NoError(b, err)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		db, err := Open(ctx, b.TempDir())
		require.NoError(b, err)
		c := benchCycle(time.Now().Truncate(time.Hour), 10000, 10)
		fillHistory(b, db, c, 30)
		b.StartTimer()
		cpu0 := cpuTime()
		res, err := db.Compact(ctx, c.At.Add(ret.Raw+5*time.Minute), ret)
		cpu += cpuTime() - cpu0
		require.NoError(b, err)
		require.Positive(b, res.Downsampled)
		b.StopTimer()
		require.NoError(b, db.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}
