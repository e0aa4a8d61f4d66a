package service

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// runnerMetrics are a runner's metrics, labelled with its service, stream
// and consumer so several runners can share a registry.
type runnerMetrics struct {
	messages *prometheus.CounterVec
	// results holds the counter of each result, curried once: no label
	// lookup per message.
	results  map[string]prometheus.Counter
	inFlight prometheus.Gauge
	duration prometheus.Observer
	breakers *prometheus.GaugeVec
	labels   prometheus.Labels
}

func newRunnerMetrics(cfg Config) (*runnerMetrics, error) {
	labels := prometheus.Labels{"service": cfg.Service, "stream": cfg.Stream, "consumer": cfg.Consumer}
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jetwatch_service_messages_total",
		Help: "Messages a service runner settled, by result: processed, retried, dead_lettered, duplicate, rejected_by_breaker.",
	}, []string{"service", "stream", "consumer", "result"})
	inFlight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jetwatch_service_in_flight",
		Help: "Messages being handled now.",
	}, []string{"service", "stream", "consumer"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jetwatch_service_handler_duration_seconds",
		Help:    "Time a handler took, successful or not.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	}, []string{"service", "stream", "consumer"})
	breakers := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jetwatch_service_breaker_state",
		Help: "A service's circuit breaker: 0 closed, 1 half-open, 2 open.",
	}, []string{"service", "breaker"})
	if cfg.Registerer != nil {
		for i, c := range []prometheus.Collector{messages, inFlight, duration, breakers} {
			if err := cfg.Registerer.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					return nil, fmt.Errorf("service: register metrics: %w", err)
				}
				// Another runner registered them: share its collectors.
				switch i {
				case 0:
					messages = are.ExistingCollector.(*prometheus.CounterVec)
				case 1:
					inFlight = are.ExistingCollector.(*prometheus.GaugeVec)
				case 2:
					duration = are.ExistingCollector.(*prometheus.HistogramVec)
				case 3:
					breakers = are.ExistingCollector.(*prometheus.GaugeVec)
				}
			}
		}
	}
	m := &runnerMetrics{messages: messages, inFlight: inFlight.With(labels), duration: duration.With(labels),
		breakers: breakers, labels: labels, results: map[string]prometheus.Counter{}}
	for _, r := range []string{"processed", "retried", "dead_lettered", "duplicate", "rejected_by_breaker"} {
		m.results[r] = messages.With(prometheus.Labels{"service": cfg.Service, "stream": cfg.Stream,
			"consumer": cfg.Consumer, "result": r})
	}
	return m, nil
}

func (m *runnerMetrics) result(r string) { m.results[r].Inc() }

// breakerState records a breaker's state as a number.
func (m *runnerMetrics) breakerState(breaker, state string) {
	v := 0.0
	switch state {
	case BreakerHalfOpen:
		v = 1
	case BreakerOpen:
		v = 2
	}
	m.breakers.With(prometheus.Labels{"service": m.labels["service"], "breaker": breaker}).Set(v)
}
