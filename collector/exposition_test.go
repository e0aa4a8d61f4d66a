package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// exporterMetrics reads the exporter's metrics and their label names, as
// learnt from its source (see the file's header).
func exporterMetrics(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("testdata/exporter_jsz_metrics.txt")
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		out[fields[0]] = fields[1:]
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 33, "the fixture lists the exporter's 33 JetStream metrics")
	return out
}

// jetwatchOnlyStreamMetrics are jetstream_* names jetwatch emits that the
// exporter does not; any other would be a misspelt exporter name.
var jetwatchOnlyStreamMetrics = []string{"jetstream_stream_num_deleted"}

// metricsWorkload creates what every exporter metric needs: a stream with
// a limit, a consumer with a description that has delivered and acked, a
// mirror and a stream with a source.
func metricsWorkload(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 100})
	require.NoError(t, err)
	publish(t, js, "orders.created", 4)
	billing, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "billing", Description: `bills "orders"`, AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	batch, err := billing.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	n := 0
	for m := range batch.Messages() {
		if n == 0 {
			require.NoError(t, m.DoubleAck(ctx))
		}
		n++
	}
	require.Equal(t, 2, n)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS_COPY", Mirror: &jetstream.StreamSource{Name: "ORDERS"}})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ALL", Sources: []*jetstream.StreamSource{{Name: "ORDERS"}}})
	require.NoError(t, err)
}

// systemSampler is a sampler of b's account whose JSZ goes through sys
// (nil: through the sampled connection), with its own registry.
func systemSampler(t *testing.T, b *testBundle, sys *nats.Conn) (*Sampler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewSampler(b.nc, b.db, SamplerConfig{SystemConn: sys, Registerer: reg, Logger: testLogger(t), JSZTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	return s, reg
}

// TestMetricsHaveTheExportersLabels scrapes a real sampler of a real
// server, with and without a system account, and compares every exporter
// metric it emits with the exporter's label names; jetwatch's own
// per-stream, per-consumer and per-server series carry the same labels.
func TestMetricsHaveTheExportersLabels(t *testing.T) {
	t.Parallel()
	exporter := exporterMetrics(t)
	for _, system := range []bool{false, true} {
		name := "without a system account"
		if system {
			name = "with a system account"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, b := setup(t, natstest.WithSystemAccount(t))
			metricsWorkload(t, b.js)
			var sys *nats.Conn
			if system {
				sys = natstest.Connect(t, b.srv, nats.UserInfo("sys", "sys"))
			}
			s, reg := systemSampler(t, b, sys)
			_, err := s.SampleOnce(context.Background())
			require.NoError(t, err)
			require.Equal(t, system, s.State().JSZ == "", s.State().JSZ)

			families := scrapeWith(t, s, reg, true)
			plain := scrapeWith(t, s, reg, false)
			require.Equal(t, len(plain), len(families), "gzipped and plain scrapes hold the same families")

			for name, want := range exporter {
				f, ok := families[name]
				perServer := strings.HasPrefix(name, "jetstream_server_") || strings.HasPrefix(name, "jetstream_account_")
				if perServer && !system {
					require.False(t, ok, "%s needs JSZ, which only a system account gets", name)
					continue
				}
				require.True(t, ok, "jetwatch emits no %s", name)
				requireLabelNames(t, f, want)
			}
			for name, f := range families {
				switch {
				case strings.HasPrefix(name, "jetstream_"):
					if _, ok := exporter[name]; !ok {
						require.Contains(t, jetwatchOnlyStreamMetrics, name, "a jetstream_ name the exporter does not have")
						requireLabelNames(t, f, streamLabelNames)
					}
				case name == limitGauge:
					requireLabelNames(t, f, append(slices.Clone(streamLabelNames), "limit", "discard"))
				case strings.HasPrefix(name, "jetwatch_stream_"):
					requireLabelNames(t, f, streamLabelNames)
				case strings.HasPrefix(name, "jetwatch_consumer_"):
					requireLabelNames(t, f, consumerLabelNames)
				case strings.HasPrefix(name, "jetwatch_server_"):
					requireLabelNames(t, f, serverLabelNames)
				}
			}
			if system {
				require.Contains(t, families, "jetwatch_server_health")
			} else {
				require.NotContains(t, families, "jetwatch_server_health")
			}
		})
	}
}

// requireLabelNames checks that every series of f has exactly want's
// label names.
func requireLabelNames(t *testing.T, f *dto.MetricFamily, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	require.NotEmpty(t, f.GetMetric(), "%s has no series", f.GetName())
	for _, m := range f.GetMetric() {
		var have []string
		for _, l := range m.GetLabel() {
			have = append(have, l.GetName())
		}
		slices.Sort(have)
		require.Equal(t, want, have, "labels of %s", f.GetName())
	}
}

// series finds the one series of a family whose labels include match, and
// returns all its labels and its value.
func series(t *testing.T, families map[string]*dto.MetricFamily, name string, match map[string]string) (map[string]string, float64) {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no %s", name)
	var found []*dto.Metric
	var labelsOf []map[string]string
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range match {
			if have[k] != v {
				continue next
			}
		}
		found = append(found, m)
		labelsOf = append(labelsOf, have)
	}
	require.Len(t, found, 1, "series of %s with %v", name, match)
	return labelsOf[0], found[0].GetGauge().GetValue()
}

// TestMetricsLabelValuesOnOneServer checks the values jetwatch gives the
// exporter's labels on a server without a JetStream cluster, in a
// JetStream domain.
func TestMetricsLabelValuesOnOneServer(t *testing.T) {
	t.Parallel()
	inDomain := func(o *server.Options) { o.JetStreamDomain = "hub" }
	_, b := setup(t, natstest.WithSystemAccount(t), inDomain)
	metricsWorkload(t, b.js)
	sys := natstest.Connect(t, b.srv, nats.UserInfo("sys", "sys"))
	s, reg := systemSampler(t, b, sys)
	_, err := s.SampleOnce(context.Background())
	require.NoError(t, err)
	families := scrapeWith(t, s, reg, true)

	name := b.srv.Name()
	server := map[string]string{
		"server_id": b.srv.ID(), "server_name": name, "cluster": "", "domain": "hub",
		"meta_leader": "", "is_meta_leader": "true",
	}
	stream := map[string]string{
		"account": "APP", "account_name": "APP", "account_id": "APP",
		"stream_name": "ORDERS", "stream_leader": name, "is_stream_leader": "true", "stream_raft_group": "",
	}
	labels, v := series(t, families, "jetstream_stream_total_messages", map[string]string{"stream_name": "ORDERS"})
	require.Equal(t, 4.0, v)
	requireSubset(t, server, labels)
	requireSubset(t, stream, labels)
	_, v = series(t, families, "jetstream_stream_limit_messages", map[string]string{"stream_name": "ORDERS"})
	require.Equal(t, 100.0, v)
	_, v = series(t, families, "jetstream_stream_limit_bytes", map[string]string{"stream_name": "ORDERS"})
	require.Equal(t, -1.0, v, "unlimited, as the exporter says it")

	labels, v = series(t, families, "jetstream_consumer_num_pending", map[string]string{"consumer_name": "billing"})
	require.Equal(t, 2.0, v)
	requireSubset(t, server, labels)
	requireSubset(t, stream, labels)
	requireSubset(t, map[string]string{"consumer_leader": name, "is_consumer_leader": "true", "consumer_desc": `bills "orders"`}, labels)
	_, v = series(t, families, "jetstream_consumer_last_delivery_seconds", map[string]string{"consumer_name": "billing"})
	require.True(t, v >= 0 && v < 60, "seconds since the last delivery: %v", v)
	_, v = series(t, families, "jetstream_consumer_last_ack_seconds", map[string]string{"consumer_name": "billing"})
	require.True(t, v >= 0 && v < 60, "seconds since the last ack: %v", v)

	labels, _ = series(t, families, "jetstream_stream_mirror_lag", map[string]string{"stream_name": "ORDERS_COPY"})
	requireSubset(t, map[string]string{"mirror_name": "ORDERS", "mirror_api": "", "mirror_deliver": ""}, labels)
	labels, _ = series(t, families, "jetstream_stream_source_active_duration_ns", map[string]string{"stream_name": "ALL"})
	requireSubset(t, map[string]string{"source_name": "ORDERS"}, labels)

	labels, v = series(t, families, "jetstream_server_total_streams", nil)
	require.Equal(t, 3.0, v)
	requireSubset(t, server, labels)
	_, v = series(t, families, "jetstream_server_total_consumers", nil)
	require.Equal(t, 1.0, v)
	labels, v = series(t, families, "jetstream_account_storage_used", map[string]string{"account": "APP"})
	require.Positive(t, v, "ORDERS and its copies are on file storage")
	requireSubset(t, server, labels)
	require.Equal(t, "APP", labels["account_id"])
	_, v = series(t, families, "jetwatch_server_health", nil)
	require.Equal(t, 0.0, v)
}

// TestMetricsAccountWithoutAccountsConfigured: a server without accounts
// puts clients in its global account, and says so.
func TestMetricsAccountWithoutAccountsConfigured(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	metricsWorkload(t, b.js)
	_, err := s.SampleOnce(context.Background())
	require.NoError(t, err)
	labels, _ := series(t, scrape(t, s, b), "jetstream_stream_total_messages", map[string]string{"stream_name": "ORDERS"})
	requireSubset(t, map[string]string{
		"account": server.DEFAULT_GLOBAL_ACCOUNT, "account_id": server.DEFAULT_GLOBAL_ACCOUNT,
		"server_id": b.srv.ID(), "domain": "",
	}, labels)
}

// TestMetricsLabelValuesInACluster checks the labels that only a cluster
// gives values: server ids of other servers, the meta leader, RAFT groups,
// and a consumer led elsewhere than its stream. Without a system account
// jetwatch knows only the id of the server it is connected to, and not
// the meta leader: those stay empty.
func TestMetricsLabelValuesInACluster(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3, natstest.WithSystemAccount(t))
	nc, err := nats.Connect(c.URLs())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sys, err := nats.Connect(c.URLs(), nats.UserInfo("sys", "sys"))
	require.NoError(t, err)
	t.Cleanup(sys.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
	require.NoError(t, err)
	publish(t, js, "orders.new", 3)
	for _, name := range []string{"a", "b", "c", "d"} {
		_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
	}
	c.WaitForMetaLeader()
	c.WaitForStreamLeader("ORDERS")
	ids := map[string]string{}
	metaLeader := ""
	for _, n := range c.Nodes {
		ids[n.Name()] = n.ID()
		if n.JetStreamIsLeader() {
			metaLeader = n.Name()
		}
	}
	db, err := store.OpenFile(ctx, t.TempDir()+"/jetwatch.db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })

	for _, system := range []bool{true, false} {
		reg := prometheus.NewRegistry()
		cfg := SamplerConfig{Registerer: reg, Logger: testLogger(t), JSZTimeout: 500 * time.Millisecond}
		if system {
			cfg.SystemConn = sys
		}
		s, err := NewSampler(nc, db, cfg)
		require.NoError(t, err)
		_, err = s.SampleOnce(ctx)
		require.NoError(t, err)
		families := scrapeWith(t, s, reg, true)

		labels, _ := series(t, families, "jetstream_stream_last_seq", map[string]string{"stream_name": "ORDERS"})
		leader := labels["stream_leader"]
		require.Contains(t, ids, leader)
		require.Equal(t, leader, labels["server_name"], "a stream's series is read from its leader")
		require.Equal(t, "true", labels["is_stream_leader"])
		require.Equal(t, c.Name, labels["cluster"])
		require.NotEmpty(t, labels["stream_raft_group"])
		require.Equal(t, "APP", labels["account"])
		requireServerKnowledge(t, labels, system, ids, metaLeader, nc)

		for _, name := range []string{"a", "b", "c", "d"} {
			labels, _ := series(t, families, "jetstream_consumer_num_pending", map[string]string{"consumer_name": name})
			require.Equal(t, labels["consumer_leader"], labels["server_name"], "a consumer's series is read from its leader")
			require.Contains(t, ids, labels["consumer_leader"])
			require.Equal(t, "true", labels["is_consumer_leader"])
			require.Equal(t, leader, labels["stream_leader"])
			require.Equal(t, boolLabel(labels["consumer_leader"] == leader), labels["is_stream_leader"])
			require.NotEmpty(t, labels["stream_raft_group"])
			requireServerKnowledge(t, labels, system, ids, metaLeader, nc)
		}

		if !system {
			require.NotContains(t, families, "jetstream_server_total_streams")
			continue
		}
		f := families["jetstream_server_total_streams"]
		require.Len(t, f.GetMetric(), 3, "one series per server")
		leaders := 0
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			require.Equal(t, ids[have["server_name"]], have["server_id"])
			require.Equal(t, metaLeader, have["meta_leader"])
			if have["is_meta_leader"] == "true" {
				leaders++
				require.Equal(t, metaLeader, have["server_name"])
			}
			require.Equal(t, 1.0, m.GetGauge().GetValue(), "ORDERS has a replica on every server")
		}
		require.Equal(t, 1, leaders)
	}
}

// requireServerKnowledge checks the server_id and meta labels of a series
// read from server_name: all known with a system account; without, only
// the connected server's id.
func requireServerKnowledge(t *testing.T, labels map[string]string, system bool, ids map[string]string, metaLeader string, nc *nats.Conn) {
	t.Helper()
	server := labels["server_name"]
	switch {
	case system:
		require.Equal(t, ids[server], labels["server_id"])
		require.Equal(t, metaLeader, labels["meta_leader"])
		require.Equal(t, boolLabel(server == metaLeader), labels["is_meta_leader"])
	case server == nc.ConnectedServerName():
		require.Equal(t, nc.ConnectedServerId(), labels["server_id"])
	default:
		require.Empty(t, labels["server_id"], "jetwatch cannot know another server's id without a system account")
	}
	if !system {
		require.Empty(t, labels["meta_leader"])
		require.Empty(t, labels["is_meta_leader"], "unknown, neither true nor false")
	}
}

func requireSubset(t *testing.T, want, have map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := have[k]
		require.True(t, ok, "label %s missing", k)
		require.Equal(t, v, got, "label %s", k)
	}
}

// TestMetricsGzipIsTheText compresses an exposition of many units on
// every core and checks that any gzip reader gets back exactly the text,
// followed by the registry's, from one gzip member.
func TestMetricsGzipIsTheText(t *testing.T) {
	t.Parallel()
	c, servers := syntheticCycle(100, 10)
	e := newExposition(c, nil, servers, servers, identity{Account: "APP", AccountID: "APP"}, connectedServer{})
	e.unitPoints = 1000
	require.Greater(t, len(e.units()), 10, "enough units to compress in parallel")
	var text bytes.Buffer
	require.NoError(t, e.writeText(&text))
	extra := []byte("# TYPE up gauge\nup 1\n")

	var wg sync.WaitGroup
	bodies := make([]*gzipBody, 4)
	for i := range bodies {
		wg.Go(func() { bodies[i] = e.gzipped() })
	}
	wg.Wait()
	for _, b := range bodies[1:] {
		require.Same(t, bodies[0], b, "compressed once")
	}
	var zipped bytes.Buffer
	require.NoError(t, bodies[0].writeGzip(&zipped, extra))
	require.Less(t, zipped.Len(), text.Len()/10)
	zr, err := gzip.NewReader(bytes.NewReader(zipped.Bytes()))
	require.NoError(t, err)
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	require.NoError(t, err, "the CRC and length check")
	require.Equal(t, text.Len()+len(extra), len(got))
	require.True(t, bytes.Equal(append(text.Bytes(), extra...), got))
	_, err = zr.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(got))
	require.NoError(t, err)
	require.Len(t, families["jetstream_consumer_num_pending"].GetMetric(), 1000)
	require.Len(t, families["jetstream_server_total_streams"].GetMetric(), 3)
	require.Equal(t, 1.0, families["up"].GetMetric()[0].GetGauge().GetValue())

	// Before the first cycle: extra alone, still one valid member.
	zipped.Reset()
	require.NoError(t, (&gzipBody{}).writeGzip(&zipped, extra))
	zr, err = gzip.NewReader(&zipped)
	require.NoError(t, err)
	got, err = io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, extra, got)
}

func TestAppendValueWritesWhatPrometheusReads(t *testing.T) {
	t.Parallel()
	for _, v := range []float64{0, 1, -1, 1e6, 12345678901234, 0.25, 1e300, -3.5e-7} {
		text := "m " + string(appendValue(nil, v)) + "\n"
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(text))
		require.NoError(t, err, text)
		require.Equal(t, v, families["m"].GetMetric()[0].GetUntyped().GetValue(), text)
	}
	require.Equal(t, "1000000", string(appendValue(nil, 1e6)))
}

// syntheticCycle is a sampled cycle of a 3-node cluster holding streams x
// consumers R3 streams and consumers, leaders spread over the nodes, with
// the names, ids and numbers a real one has.
func syntheticCycle(streams, consumers int) (*store.Cycle, []store.Server) {
	at := time.Now().UTC()
	nodes := []string{"nats-0", "nats-1", "nats-2"}
	cluster := func(i int, kind string) *store.Cluster {
		c := &store.Cluster{Name: "east", Leader: nodes[i%3], RaftGroup: fmt.Sprintf("%s-R3F-%08x", kind, i*2654435761%(1<<32))}
		for j := 1; j < 3; j++ {
			c.Replicas = append(c.Replicas, store.Replica{Name: nodes[(i+j)%3], Current: true})
		}
		return c
	}
	c := &store.Cycle{At: at}
	for i := range streams {
		name := fmt.Sprintf("ORDERS_%05d", i)
		st := store.Stream{
			Name: name, Messages: uint64(i * 1000), Bytes: uint64(i * 256000), FirstSeq: 1, LastSeq: uint64(i * 1000),
			NumSubjects: 12, ConsumerCount: consumers, Limits: store.StreamLimits{MaxMsgs: -1, MaxBytes: 1 << 30},
			Cluster: cluster(i, "S"), InPerSec: float64(i%7) * 1.5, Health: store.Health{Level: store.HealthOK}, SampledAt: at,
		}
		st.Limits.BytesUsedPct = ptr(float64(i%100) / 3)
		c.Streams = append(c.Streams, st)
		for j := range consumers {
			delivered := at.Add(-time.Duration(j) * time.Second)
			c.Consumers = append(c.Consumers, store.Consumer{
				Stream: name, Name: fmt.Sprintf("worker_%02d", j), NumPending: uint64(i * j), NumAckPending: j,
				Delivered:       store.SequencePair{ConsumerSeq: uint64(i*1000 - j), StreamSeq: uint64(i*1000 - j), LastActive: &delivered},
				AckFloor:        store.SequencePair{ConsumerSeq: uint64(i*1000 - 2*j), StreamSeq: uint64(i*1000 - 2*j), LastActive: &delivered},
				DeliveredPerSec: float64(j) / 3, AckedPerSec: float64(j) / 3, Cluster: cluster(i*consumers+j, "C"),
				Health: store.Health{Level: store.HealthOK}, SampledAt: at, ServerTime: at,
			})
		}
	}
	var servers []store.Server
	for i, n := range nodes {
		servers = append(servers, store.Server{
			Name: n, ID: "N" + strings.Repeat(string(rune('A'+i)), 55), Cluster: "east", MetaLeader: nodes[0],
			Streams: streams, Consumers: streams * consumers, Health: store.Health{Level: store.HealthOK}, SampledAt: at,
			Accounts: []store.ServerAccount{{Name: "APP", ID: "APP", Storage: 1 << 30}},
		})
	}
	c.Servers = servers
	return c, servers
}

// TestMetricsCompressedAheadWhileScrapedWithGzip: once something scrapes
// with gzip, each new cycle is compressed without waiting for a scrape;
// before that, no cycle pays for it.
func TestMetricsCompressedAheadWhileScrapedWithGzip(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	metricsWorkload(t, b.js)
	ctx := context.Background()
	_, err := s.SampleOnce(ctx)
	require.NoError(t, err)
	first := s.exposition.Load()
	require.False(t, first.compressed.Load(), "nothing scraped with gzip yet")
	require.NoError(t, s.WriteMetrics(io.Discard, false, nil))
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	require.False(t, s.exposition.Load().compressed.Load(), "a plain scrape does not ask for gzip")

	require.NoError(t, s.WriteMetrics(io.Discard, true, nil))
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	next := s.exposition.Load()
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if !next.compressed.Load() {
			return fmt.Errorf("the new cycle is not compressed yet")
		}
		return nil
	})

	// Ten minutes without a gzipped scrape: cycles stop compressing.
	b.clock.Advance(gzipAheadWhileScraped + time.Second)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	require.False(t, s.exposition.Load().compressed.Load())
}

// TestMetricsWhenTheAccountCannotBeLearnt: a user that may not publish
// $SYS.REQ.USER.INFO gets its series with empty account labels, and the
// reason is logged once, not at every retry.
func TestMetricsWhenTheAccountCannotBeLearnt(t *testing.T) {
	t.Parallel()
	deny := func(o *server.Options) {
		o.Users = []*server.User{{Username: "jetwatch", Password: "secret", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Deny: []string{userInfoSubject}},
		}}}
	}
	srv := natstest.RunServer(t, deny)
	nc := natstest.Connect(t, srv, nats.UserInfo("jetwatch", "secret"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	metricsWorkload(t, js)
	db, err := store.OpenFile(context.Background(), t.TempDir()+"/jetwatch.db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	clock := &fakeClock{now: time.Now()}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	const timeout = 300 * time.Millisecond
	s, err := NewSampler(nc, db, SamplerConfig{
		RequestTimeout: timeout, Registerer: reg, Now: clock.Now, JSZTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, logs), nil)),
	})
	require.NoError(t, err)

	asked := func() time.Time {
		s.ident.mu.Lock()
		defer s.ident.mu.Unlock()
		return s.ident.at
	}
	for range 2 {
		before := asked()
		_, err = s.SampleOnce(context.Background())
		require.NoError(t, err)
		labels, v := series(t, scrapeWith(t, s, reg, true), "jetstream_stream_total_messages", map[string]string{"stream_name": "ORDERS"})
		require.Equal(t, 4.0, v)
		requireSubset(t, map[string]string{"account": "", "account_name": "", "account_id": "", "server_id": srv.ID(), "server_name": srv.Name()}, labels)
		// The second time, asked again in the background.
		natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !asked().After(before) {
				return fmt.Errorf("not asked yet")
			}
			return nil
		})
		clock.Advance(identityRefresh + time.Second) // ask again next cycle
	}
	require.Equal(t, 1, strings.Count(logs.String(), "could not learn its account"), logs.String())
	require.Contains(t, logs.String(), userInfoSubject)
	require.True(t, nc.IsConnected(), "a denied request does not cost the connection")
}

// Consumer labels are kept packed between scrapes; written out, they are
// the labels in full, escaped, whatever the name and description hold.
func TestPackedConsumerLabelsWriteTheFullLabels(t *testing.T) {
	long := strings.Repeat("n", 300) // a length that takes two varint bytes
	cases := []struct{ name, leader, desc string }{
		{"worker", "nats-0", ""},
		{"worker", "", "no leader known"},
		{long, strings.Repeat("l", 130), long},
		{`q"uo\te`, "nats-1", "line\nbreak \"quoted\" back\\slash"},
		{"", "", ""},
		{"ünïcode", "nats-2", "日本語"},
	}
	for _, tc := range cases {
		c := &store.Consumer{Name: tc.name, Description: tc.desc}
		want := labels("consumer_name", tc.name, "consumer_leader", tc.leader,
			"is_consumer_leader", boolLabel(tc.leader != ""), "consumer_desc", tc.desc)
		got := string(appendConsumerLabels([]byte("x,"), packConsumerLabels(c, tc.leader)))
		require.Equal(t, "x,"+want, got, "consumer %q", tc.name)
	}
}
