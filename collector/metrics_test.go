package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// TestMetricsParseWithExporterNames scrapes /metrics as Prometheus would and
// checks prometheus-nats-exporter's names and labels, so its dashboards work.
func TestMetricsParseWithExporterNames(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 100})
	require.NoError(t, err)
	publish(t, b.js, "orders.created", 4)
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)

	families := scrape(t, s, b)

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		require.True(t, ok, "metric %s missing", name)
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
		t.Fatalf("no %s with labels %v", name, labels)
		return 0
	}
	orders := map[string]string{"stream_name": "ORDERS", "is_stream_leader": "true"}
	billing := map[string]string{"stream_name": "ORDERS", "consumer_name": "billing", "is_consumer_leader": "true"}
	require.Equal(t, 4.0, value("jetstream_stream_total_messages", orders))
	require.Positive(t, value("jetstream_stream_total_bytes", orders))
	require.Equal(t, 1.0, value("jetstream_stream_first_seq", orders))
	require.Equal(t, 4.0, value("jetstream_stream_last_seq", orders))
	require.Equal(t, 1.0, value("jetstream_stream_consumer_count", orders))
	require.Equal(t, 4.0, value("jetstream_consumer_num_pending", billing))
	require.Equal(t, 0.0, value("jetstream_consumer_num_ack_pending", billing))
	require.Equal(t, 0.0, value("jetstream_consumer_num_redelivered", billing))
	require.Equal(t, 0.0, value("jetstream_consumer_num_waiting", billing))
	require.Equal(t, 0.0, value("jetstream_consumer_ack_floor_stream_seq", billing))
	require.Equal(t, 0.04, value("jetwatch_stream_limit_used_ratio", map[string]string{"stream_name": "ORDERS", "limit": "messages", "discard": "old"}))
	require.Equal(t, 0.0, value("jetwatch_stream_health", orders))

	h, ok := families["jetwatch_sample_duration_seconds"]
	require.True(t, ok)
	require.Equal(t, uint64(1), h.GetMetric()[0].GetHistogram().GetSampleCount())
	require.Contains(t, families, "jetwatch_last_sample_timestamp_seconds")

	// The gzipped form is the same text, the registry's metrics included.
	extra := []byte("# TYPE registry_gauge gauge\nregistry_gauge 1\n")
	var plain, zipped bytes.Buffer
	require.NoError(t, s.WriteMetrics(&plain, false, extra))
	require.NoError(t, s.WriteMetrics(&zipped, true, extra))
	zr, err := gzip.NewReader(&zipped)
	require.NoError(t, err)
	zr.Multistream(false) // one member holds it all
	unzipped, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, plain.String(), string(unzipped))
	require.True(t, strings.HasSuffix(plain.String(), string(extra)))
}

// scrape returns what /metrics serves, the sampled series and the
// registry's metrics, parsed with the Prometheus text parser.
func scrape(t *testing.T, s *Sampler, b *testBundle) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeWith(t, s, b.reg, false)
}

// scrapeWith is scrape with any registry, gzipped or not, as web serves it.
func scrapeWith(t *testing.T, s *Sampler, reg *prometheus.Registry, gz bool) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var out bytes.Buffer
	require.NoError(t, s.WriteMetrics(&out, gz, rec.Body.Bytes()))
	var text io.Reader = &out
	if gz {
		zr, err := gzip.NewReader(&out)
		require.NoError(t, err)
		text = zr
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(text)
	require.NoError(t, err)
	return families
}

func TestLabelValuesAreEscaped(t *testing.T) {
	t.Parallel()
	require.Equal(t, `stream_name="a\"b\\c\nd",consumer_desc=""`, labels("stream_name", "a\"b\\c\nd", "consumer_desc", ""))
}

// gatherAll is a registry's metrics by name.
func gatherAll(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}
