package collector

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// samplerMetrics are the sampler's own metrics. The stream and consumer
// gauges are not collectors: see exposition.go.
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
			Help: "Problems met while sampling, by kind (nats, list_streams, list_consumers, stream_unread, consumer_unread, server_down, store).",
		}, []string{"kind"}),
		lastSample: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jetwatch_last_sample_timestamp_seconds",
			Help: "Unix time of the last sample stored.",
		}),
	}
}

func (m *samplerMetrics) register(r prometheus.Registerer) error {
	return register(r, "sampler", m.duration, m.errors, m.lastSample)
}

// register registers a component's collectors on r, which may be nil.
func register(r prometheus.Registerer, component string, cs ...prometheus.Collector) error {
	if r == nil {
		return nil
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register %s metrics: %w", component, err)
		}
	}
	return nil
}
