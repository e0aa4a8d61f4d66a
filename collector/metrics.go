package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/store"
)

// samplerMetrics are the sampler's own metrics plus the stream and consumer
// gauges, which are served from the latest cycle held in memory: a scrape
// never calls JetStream and never decodes the database.
type samplerMetrics struct {
	s          *Sampler
	duration   prometheus.Histogram
	errors     *prometheus.CounterVec
	lastSample prometheus.Gauge
}

func newSamplerMetrics(s *Sampler) *samplerMetrics {
	return &samplerMetrics{
		s: s,
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jetwatch_sample_duration_seconds",
			Help:    "Duration of one sampling cycle over every stream and consumer.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_sample_errors_total",
			Help: "Problems met while sampling, by kind (nats, list_streams, list_consumers, jsz, store).",
		}, []string{"kind"}),
		lastSample: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jetwatch_last_sample_timestamp_seconds",
			Help: "Unix time of the last sample stored.",
		}),
	}
}

func (m *samplerMetrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.duration, m.errors, m.lastSample, &latestCollector{m.s}} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Label names follow prometheus-nats-exporter's JetStream metrics, so
// dashboards built for it work against jetwatch.
var (
	streamLabels   = []string{"stream_name", "stream_leader", "is_stream_leader", "cluster"}
	consumerLabels = []string{"stream_name", "consumer_name", "consumer_leader", "is_consumer_leader", "cluster"}

	streamGauges = []struct {
		desc  *prometheus.Desc
		value func(*store.Stream) float64
	}{
		{gaugeDesc("jetstream_stream_total_messages", "Messages stored in the stream.", streamLabels), func(s *store.Stream) float64 { return float64(s.Messages) }},
		{gaugeDesc("jetstream_stream_total_bytes", "Bytes stored in the stream.", streamLabels), func(s *store.Stream) float64 { return float64(s.Bytes) }},
		{gaugeDesc("jetstream_stream_first_seq", "First sequence in the stream.", streamLabels), func(s *store.Stream) float64 { return float64(s.FirstSeq) }},
		{gaugeDesc("jetstream_stream_last_seq", "Last sequence in the stream.", streamLabels), func(s *store.Stream) float64 { return float64(s.LastSeq) }},
		{gaugeDesc("jetstream_stream_consumer_count", "Consumers of the stream.", streamLabels), func(s *store.Stream) float64 { return float64(s.ConsumerCount) }},
		{gaugeDesc("jetstream_stream_num_deleted", "Interior deleted messages of the stream.", streamLabels), func(s *store.Stream) float64 { return float64(s.NumDeleted) }},
		{gaugeDesc("jetwatch_stream_health", "Stream health: 0 ok, 1 warning, 2 critical.", streamLabels), func(s *store.Stream) float64 { return float64(healthValue(s.Health.Level)) }},
		{gaugeDesc("jetwatch_stream_messages_per_second", "Messages added per second, from the last two samples.", streamLabels), func(s *store.Stream) float64 { return s.InPerSec }},
	}
	limitDesc = gaugeDesc("jetwatch_stream_limit_used_ratio", "Share of a stream limit in use (0-1), by limit (messages, bytes); absent when unlimited.",
		append(append([]string(nil), streamLabels...), "limit"))

	consumerGauges = []struct {
		desc  *prometheus.Desc
		value func(*store.Consumer) float64
	}{
		{gaugeDesc("jetstream_consumer_num_pending", "Messages in the stream not yet delivered to the consumer.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.NumPending) }},
		{gaugeDesc("jetstream_consumer_num_ack_pending", "Messages delivered and not yet acknowledged.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.NumAckPending) }},
		{gaugeDesc("jetstream_consumer_num_redelivered", "Messages redelivered and not yet acknowledged.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.NumRedelivered) }},
		{gaugeDesc("jetstream_consumer_num_waiting", "Pull requests waiting for messages.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.NumWaiting) }},
		{gaugeDesc("jetstream_consumer_delivered_consumer_seq", "Last delivered consumer sequence.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.Delivered.ConsumerSeq) }},
		{gaugeDesc("jetstream_consumer_delivered_stream_seq", "Last delivered stream sequence.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.Delivered.StreamSeq) }},
		{gaugeDesc("jetstream_consumer_ack_floor_consumer_seq", "Ack floor consumer sequence.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.AckFloor.ConsumerSeq) }},
		{gaugeDesc("jetstream_consumer_ack_floor_stream_seq", "Ack floor stream sequence.", consumerLabels), func(c *store.Consumer) float64 { return float64(c.AckFloor.StreamSeq) }},
		{gaugeDesc("jetwatch_consumer_stalled", "1 when the consumer has pending messages and delivered nothing for the stall threshold.", consumerLabels), func(c *store.Consumer) float64 { return boolValue(c.Stalled) }},
		{gaugeDesc("jetwatch_consumer_delivered_per_second", "Deliveries per second, from the last two samples.", consumerLabels), func(c *store.Consumer) float64 { return c.DeliveredPerSec }},
		{gaugeDesc("jetwatch_consumer_acked_per_second", "Acknowledgements per second (ack floor movement), from the last two samples.", consumerLabels), func(c *store.Consumer) float64 { return c.AckedPerSec }},
	}
)

func gaugeDesc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

type latestCollector struct{ s *Sampler }

func (l *latestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range streamGauges {
		ch <- g.desc
	}
	ch <- limitDesc
	for _, g := range consumerGauges {
		ch <- g.desc
	}
}

func (l *latestCollector) Collect(ch chan<- prometheus.Metric) {
	c := l.s.Latest()
	if c == nil {
		return
	}
	for i := range c.Streams {
		st := &c.Streams[i]
		leader, cluster := leaderOf(st.Cluster)
		labels := []string{st.Name, leader, "true", cluster}
		for _, g := range streamGauges {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value(st), labels...)
		}
		if p := st.Limits.MsgsUsedPct; p != nil {
			ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, *p/100, append(labels, "messages")...)
		}
		if p := st.Limits.BytesUsedPct; p != nil {
			ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, *p/100, append(labels, "bytes")...)
		}
	}
	for i := range c.Consumers {
		cs := &c.Consumers[i]
		leader, cluster := leaderOf(cs.Cluster)
		labels := []string{cs.Stream, cs.Name, leader, "true", cluster}
		for _, g := range consumerGauges {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value(cs), labels...)
		}
	}
}

func leaderOf(c *store.Cluster) (leader, cluster string) {
	if c == nil {
		return "", ""
	}
	return c.Leader, c.Name
}

func healthValue(level string) int {
	switch level {
	case store.HealthWarning:
		return 1
	case store.HealthCritical:
		return 2
	}
	return 0
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
