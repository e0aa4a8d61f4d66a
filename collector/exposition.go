package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"strings"

	"github.com/jetwatch/jetwatch/store"
)

// The stream and consumer gauges are rendered in the Prometheus text format
// once per cycle, plain and gzipped, and a scrape copies those bytes. With
// 1,000 streams x 10 consumers that is over 100,000 series: building them as
// client_golang const metrics on every scrape took most of a second, and
// this takes a copy. A scrape never calls JetStream nor reads the database.

// exposition is one cycle's gauges in the text format.
type exposition struct {
	plain []byte
	gzip  []byte // one gzip member, so it can follow another in a response
}

// Label names follow prometheus-nats-exporter's JetStream metrics, so
// dashboards built for it work against jetwatch.
var (
	streamGauges = []struct {
		name, help string
		value      func(*store.Stream) float64
	}{
		{"jetstream_stream_total_messages", "Messages stored in the stream.", func(s *store.Stream) float64 { return float64(s.Messages) }},
		{"jetstream_stream_total_bytes", "Bytes stored in the stream.", func(s *store.Stream) float64 { return float64(s.Bytes) }},
		{"jetstream_stream_first_seq", "First sequence in the stream.", func(s *store.Stream) float64 { return float64(s.FirstSeq) }},
		{"jetstream_stream_last_seq", "Last sequence in the stream.", func(s *store.Stream) float64 { return float64(s.LastSeq) }},
		{"jetstream_stream_consumer_count", "Consumers of the stream.", func(s *store.Stream) float64 { return float64(s.ConsumerCount) }},
		{"jetstream_stream_num_deleted", "Interior deleted messages of the stream.", func(s *store.Stream) float64 { return float64(s.NumDeleted) }},
		{healthGauge, "Stream health: 0 ok, 1 warning, 2 critical.", func(s *store.Stream) float64 { return float64(healthValue(s.Health.Level)) }},
		{"jetwatch_stream_messages_per_second", "Messages added per second, from the last two samples.", func(s *store.Stream) float64 { return s.InPerSec }},
	}
	consumerGauges = []struct {
		name, help string
		value      func(*store.Consumer) float64
	}{
		{"jetstream_consumer_num_pending", "Messages in the stream not yet delivered to the consumer.", func(c *store.Consumer) float64 { return float64(c.NumPending) }},
		{"jetstream_consumer_num_ack_pending", "Messages delivered and not yet acknowledged.", func(c *store.Consumer) float64 { return float64(c.NumAckPending) }},
		{"jetstream_consumer_num_redelivered", "Messages redelivered and not yet acknowledged.", func(c *store.Consumer) float64 { return float64(c.NumRedelivered) }},
		{"jetstream_consumer_num_waiting", "Pull requests waiting for messages.", func(c *store.Consumer) float64 { return float64(c.NumWaiting) }},
		{"jetstream_consumer_delivered_consumer_seq", "Last delivered consumer sequence.", func(c *store.Consumer) float64 { return float64(c.Delivered.ConsumerSeq) }},
		{"jetstream_consumer_delivered_stream_seq", "Last delivered stream sequence.", func(c *store.Consumer) float64 { return float64(c.Delivered.StreamSeq) }},
		{"jetstream_consumer_ack_floor_consumer_seq", "Ack floor consumer sequence.", func(c *store.Consumer) float64 { return float64(c.AckFloor.ConsumerSeq) }},
		{"jetstream_consumer_ack_floor_stream_seq", "Ack floor stream sequence.", func(c *store.Consumer) float64 { return float64(c.AckFloor.StreamSeq) }},
		{"jetwatch_consumer_stalled", "1 when the consumer is stalled, or stopped with nobody consuming (not paused or deleted): messages wait and nothing is acknowledged.", func(c *store.Consumer) float64 { return boolValue(c.Stalled) }},
		{"jetwatch_consumer_delivered_per_second", "Deliveries per second, from the last two samples.", func(c *store.Consumer) float64 { return c.DeliveredPerSec }},
		{"jetwatch_consumer_acked_per_second", "Acknowledgements per second (ack floor movement), from the last two samples.", func(c *store.Consumer) float64 { return c.AckedPerSec }},
		{lagStateGauge, "Consumer lag judged over a window of samples: 0 ok, 1 draining, 2 falling behind, 3 stalled, 4 stopped (nobody consuming, paused or deleted).", func(c *store.Consumer) float64 { return float64(store.LagRank(c.LagState)) }},
	}
)

const (
	limitGauge    = "jetwatch_stream_limit_used_ratio"
	healthGauge   = "jetwatch_stream_health"
	lagStateGauge = "jetwatch_consumer_lag_state"
)

func renderExposition(c *store.Cycle) *exposition {
	var b bytes.Buffer
	b.Grow(len(c.Streams)*1500 + len(c.Consumers)*2500)
	streamLabels := make([]string, len(c.Streams))
	for i := range c.Streams {
		st := &c.Streams[i]
		leader, cluster := leaderOf(st.Cluster)
		streamLabels[i] = labels("stream_name", st.Name, "stream_leader", leader, "is_stream_leader", "true", "cluster", cluster)
	}
	for _, g := range streamGauges {
		header(&b, g.name, g.help)
		for i := range c.Streams {
			// A stream not read this cycle has only its health: its
			// numbers are old, and an absent series says so.
			if c.Streams[i].Unread == nil || g.name == healthGauge {
				sample(&b, g.name, streamLabels[i], g.value(&c.Streams[i]))
			}
		}
	}
	header(&b, limitGauge, "Share of a stream limit in use (0-1), by limit (messages, bytes); absent when unlimited.")
	for i := range c.Streams {
		st := &c.Streams[i]
		if st.Unread != nil {
			continue
		}
		base := streamLabels[i][:len(streamLabels[i])-1] // without the closing brace
		if p := st.Limits.MsgsUsedPct; p != nil {
			sample(&b, limitGauge, base+`,limit="messages"}`, *p/100)
		}
		if p := st.Limits.BytesUsedPct; p != nil {
			sample(&b, limitGauge, base+`,limit="bytes"}`, *p/100)
		}
	}
	consumerLabels := make([]string, len(c.Consumers))
	for i := range c.Consumers {
		cs := &c.Consumers[i]
		leader, cluster := leaderOf(cs.Cluster)
		consumerLabels[i] = labels("stream_name", cs.Stream, "consumer_name", cs.Name, "consumer_leader", leader,
			"is_consumer_leader", "true", "cluster", cluster)
	}
	for _, g := range consumerGauges {
		header(&b, g.name, g.help)
		for i := range c.Consumers {
			// A deleted consumer has only its lag state (stopped).
			if cs := &c.Consumers[i]; cs.Unread == nil && (cs.DeletedAt == nil || g.name == lagStateGauge) {
				sample(&b, g.name, consumerLabels[i], g.value(cs))
			}
		}
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(b.Bytes()) //nolint:errcheck // writes to memory
	zw.Close()          //nolint:errcheck // writes to memory
	return &exposition{plain: b.Bytes(), gzip: z.Bytes()}
}

func header(b *bytes.Buffer, name, help string) {
	b.WriteString("# HELP ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(help)
	b.WriteString("\n# TYPE ")
	b.WriteString(name)
	b.WriteString(" gauge\n")
}

func sample(b *bytes.Buffer, name, labels string, v float64) {
	b.WriteString(name)
	b.WriteString(labels)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
}

// labels renders {k="v",...} with the text format's escaping.
func labels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		labelEscaper.WriteString(&b, kv[i+1]) //nolint:errcheck // writes to memory
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// WriteMetrics writes the latest cycle's stream and consumer gauges in the
// Prometheus text format, gzipped when gz is set (as one gzip member that
// may follow others). Before the first cycle it writes nothing.
func (s *Sampler) WriteMetrics(w io.Writer, gz bool) error {
	e := s.exposition.Load()
	if e == nil {
		return nil
	}
	data := e.plain
	if gz {
		data = e.gzip
	}
	_, err := w.Write(data)
	return err
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
