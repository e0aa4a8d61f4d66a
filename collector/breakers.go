package collector

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/internal/ensure"
	"github.com/jetwatch/jetwatch/internal/seriescap"
	"github.com/jetwatch/jetwatch/service"
	"github.com/jetwatch/jetwatch/store"
)

// DefaultBreakerBucket is where services report their circuit breakers.
const DefaultBreakerBucket = service.BreakerBucket

// BreakerWatcherConfig configures a BreakerWatcher.
type BreakerWatcherConfig struct {
	// Bucket is the KV bucket services report to. Defaults to
	// jetwatch_breakers.
	Bucket string
	// Replicas of the bucket when jetwatch creates it, or raises it to.
	// Defaults to 1.
	Replicas int
	// Registerer receives the breaker metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// BreakerWatcher watches the breakers bucket and stores each report and
// every state change in the index.
type BreakerWatcher struct {
	js     jetstream.JetStream
	db     *store.DB
	cfg    BreakerWatcherConfig
	logger *slog.Logger

	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	// series are the breakers with series of their own, at most
	// maxBreakerSeries.
	series *seriescap.Pairs
	capped bool // the cap was reached and said so (the watching goroutine's)

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewBreakerWatcher returns a watcher of js's breakers bucket.
func NewBreakerWatcher(js jetstream.JetStream, db *store.DB, cfg BreakerWatcherConfig) (*BreakerWatcher, error) {
	cfg.Bucket = cmp.Or(cfg.Bucket, DefaultBreakerBucket)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	w := &BreakerWatcher{js: js, db: db, cfg: cfg, logger: cfg.Logger.With("component", "breakers"),
		series: seriescap.New(maxBreakerSeries),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jetwatch_breaker_state",
			Help: "Circuit breaker state reported by services: 0 closed, 1 half-open, 2 open.",
		}, []string{"service", "breaker"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_breaker_transitions_total",
			Help: "Circuit breaker state changes seen, by the state changed to.",
		}, []string{"service", "breaker", "to"}),
	}
	if err := register(cfg.Registerer, "breaker", w.state, w.transitions); err != nil {
		return nil, err
	}
	return w, nil
}

// Start creates the bucket if missing (so services and jetwatch may start
// in any order) and watches it in the background.
func (w *BreakerWatcher) Start(ctx context.Context) error {
	bucket := service.BreakerBucketConfig()
	bucket.Bucket, bucket.Replicas = w.cfg.Bucket, w.cfg.Replicas
	kv, err := ensure.KeyValue(ctx, w.js, bucket)
	if err != nil {
		return fmt.Errorf("breakers bucket %s (allow $JS.API.STREAM.CREATE.KV_%s): %w", w.cfg.Bucket, w.cfg.Bucket, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	watcher, err := kv.WatchAll(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("watch %s: %w", w.cfg.Bucket, err)
	}
	w.stop, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		defer watcher.Stop() //nolint:errcheck // stopping anyway
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-watcher.Updates():
				if !ok {
					return
				}
				switch {
				case e == nil:
				case e.Operation() == jetstream.KeyValuePut:
					w.apply(ctx, e.Key(), e.Value(), e.Created())
				default:
					// Deleted or purged: whoever removed the report
					// (an operator retiring a service) wants it gone.
					w.forget(ctx, e.Key())
				}
			}
		}
	}()
	return nil
}

// Stop stops watching. Safe to call twice.
func (w *BreakerWatcher) Stop() {
	w.stopOnce.Do(func() {
		if w.stop != nil {
			w.stop()
			<-w.done
		}
	})
}

// Bounds on what a breaker report may claim: any service (or anyone
// allowed to write the bucket) writes them, and a report that is never
// stale would keep an open breaker holding every bulk redelivery to its
// consumer.
const (
	// maxReportedHeartbeat is the longest heartbeat believed: a breaker
	// silent for three of them is stale. One not given (an older
	// service) is taken as the service package's 10 s.
	maxReportedHeartbeat = time.Hour
	defaultHeartbeat     = 10 * time.Second
	// maxReportedError and maxReportedName bound the texts kept.
	maxReportedError = 1024
	maxReportedName  = 256
)

// apply stores a report written to the bucket at written (the server's
// clock): that, not the time the report claims, is when the breaker was
// last heard from.
func (w *BreakerWatcher) apply(ctx context.Context, key string, value []byte, written time.Time) {
	var b store.Breaker
	if err := json.Unmarshal(value, &b); err != nil || b.Service == "" || b.Breaker == "" {
		w.logger.Warn("malformed breaker report ignored", "key", key, "err", err)
		return
	}
	switch b.State {
	case store.BreakerClosed, store.BreakerHalfOpen, store.BreakerOpen:
	default:
		w.logger.Warn("breaker report with an unknown state ignored", "key", key, "state", b.State)
		return
	}
	if want := service.BreakerKey(b.Service, b.Breaker); key != want {
		// A service reports under the key its names make; a report
		// under another key would speak for a breaker it is not (and
		// any number of names could be made up this way).
		w.logger.Warn("breaker report ignored: it names a breaker whose key is another", "key", key,
			"service", b.Service, "breaker", b.Breaker, "its_key", want)
		return
	}
	if written.IsZero() {
		written = time.Now()
	}
	b.UpdatedAt = written.UTC()
	if b.Since.IsZero() || b.Since.After(b.UpdatedAt.Add(time.Minute)) {
		// Not begun later than it was reported (a minute's clock skew
		// allowed), nor never.
		b.Since = b.UpdatedAt
	}
	switch hb := b.HeartbeatSeconds; {
	case math.IsNaN(hb) || hb <= 0:
		b.HeartbeatSeconds = defaultHeartbeat.Seconds()
	case hb > maxReportedHeartbeat.Seconds():
		b.HeartbeatSeconds = maxReportedHeartbeat.Seconds()
	}
	b.LastError = clampText(b.LastError, maxReportedError)
	b.Instance = clampText(b.Instance, maxReportedName)
	b.Stream = clampText(b.Stream, maxReportedName)
	b.Consumer = clampText(b.Consumer, maxReportedName)
	tr, err := w.db.SaveBreaker(ctx, b)
	if err != nil {
		w.logger.Error("storing a breaker report failed", "key", key, "err", err)
		return
	}
	counted := w.counted(b.Service, b.Breaker)
	if counted {
		w.state.WithLabelValues(b.Service, b.Breaker).Set(breakerValue(b.State))
	}
	if tr != nil && tr.From != "unknown" {
		if counted {
			w.transitions.WithLabelValues(b.Service, b.Breaker, b.State).Inc()
		}
		w.logger.Info("breaker changed state", "service", b.Service, "breaker", b.Breaker, "from", tr.From, "to", tr.To)
	}
}

// maxBreakerSeries caps the breakers with series of their own: anyone
// allowed to write the bucket could report breakers without end.
const maxBreakerSeries = 10_000

// counted says whether a breaker has series of its own: it has, or there
// is room for it.
func (w *BreakerWatcher) counted(service, breaker string) bool {
	if w.series.Admit(service, breaker) {
		return true
	}
	if !w.capped {
		w.capped = true
		w.logger.Warn("breakers beyond the first ones get no metric series: they are shown and judged, but not exported",
			"cap", maxBreakerSeries, "service", service, "breaker", breaker)
	}
	return false
}

// forget removes the breaker reported under key, and its series, once its
// report is deleted from the bucket. Its transitions stay with the
// history until they expire.
func (w *BreakerWatcher) forget(ctx context.Context, key string) {
	all, err := w.db.Breakers(ctx, time.Now())
	if err != nil {
		w.logger.Error("forgetting a deleted breaker report failed; it stays shown until its report is written again and deleted", "key", key, "err", err)
		return
	}
	for _, b := range all {
		if service.BreakerKey(b.Service, b.Breaker) != key {
			continue
		}
		if err := w.db.DeleteBreaker(ctx, b.Service, b.Breaker); err != nil {
			w.logger.Error("forgetting a deleted breaker report failed; it stays shown until its report is written again and deleted", "key", key, "err", err)
			return
		}
		w.state.DeleteLabelValues(b.Service, b.Breaker)
		w.transitions.DeletePartialMatch(prometheus.Labels{"service": b.Service, "breaker": b.Breaker})
		w.series.Forget(b.Service, b.Breaker)
		w.logger.Info("breaker forgotten: its report was deleted", "service", b.Service, "breaker", b.Breaker)
	}
}

// clampText cuts s to at most n bytes at a character boundary, marking
// the cut with "…".
func clampText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func breakerValue(state string) float64 {
	switch state {
	case store.BreakerHalfOpen:
		return 1
	case store.BreakerOpen:
		return 2
	}
	return 0
}
