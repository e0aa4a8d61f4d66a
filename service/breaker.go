package service

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker/v2"

	"github.com/jetwatch/jetwatch/internal/ensure"
)

// BreakerBucket is the KV bucket breakers report to; jetwatch's dashboard
// watches it.
const BreakerBucket = "jetwatch_breakers"

// BreakerBucketHistory is how many reports per breaker the bucket keeps:
// with only the latest, a watcher a moment behind would miss a state that
// lasted milliseconds (half open, then closed).
const BreakerBucketHistory = 16

// BreakerBucketConfig is the bucket as services and jetwatch create it;
// both use this, so neither changes the other's.
func BreakerBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: BreakerBucket, History: BreakerBucketHistory,
		Description: "circuit breaker states reported by services (jetwatch)"}
}

// Breaker states as reported.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// BreakerConfig configures the circuit breaker around the handler.
type BreakerConfig struct {
	// Name names the breaker (the downstream it guards). Defaults to
	// "handler".
	Name string
	// Failures is how many failures in a row open the breaker. Defaults to 5.
	Failures uint32
	// OpenFor is how long the breaker stays open before it lets a trickle
	// through. Defaults to 30 seconds.
	OpenFor time.Duration
	// HalfOpenRequests is how many messages are let through while half
	// open. Defaults to 1.
	HalfOpenRequests uint32
	// Heartbeat is how often the state is written even when it does not
	// change, so the dashboard can tell a breaker whose service died
	// (stale). Defaults to 10 seconds.
	Heartbeat time.Duration
	// Instance names this process in the report. Defaults to the host
	// name and process id.
	Instance string
}

// BreakerReport is a breaker's state as written to the jetwatch_breakers
// bucket under <service>.<breaker>.
type BreakerReport struct {
	Service        string    `json:"service"`
	Breaker        string    `json:"breaker"`
	Stream         string    `json:"stream"` // the consumer it guards
	Consumer       string    `json:"consumer"`
	State          string    `json:"state"`
	Since          time.Time `json:"since"`
	Failures       uint32    `json:"consecutive_failures"`
	TotalFailures  uint32    `json:"total_failures"`
	Requests       uint32    `json:"requests"`
	LastError      string    `json:"last_error,omitempty"`
	Instance       string    `json:"instance"`
	HeartbeatEvery float64   `json:"heartbeat_seconds"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// BreakerKey is the KV key of a service's breaker.
func BreakerKey(service, breaker string) string {
	return keyToken(service) + "." + keyToken(breaker)
}

// keyToken keeps the characters a KV key allows in a token.
func keyToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			return r
		}
		return '_'
	}, s)
}

// Breaker is a circuit breaker around calls to a named downstream, for
// use inside a handler. Give it to the runner in Config.Downstreams, so
// the runner stops fetching while it is open, and it reports to the
// dashboard like the handler's breaker.
type Breaker struct{ b *breaker }

// NewBreaker returns a breaker of service around the downstream cfg.Name.
func NewBreaker(ctx context.Context, js jetstream.JetStream, service string, cfg BreakerConfig) (*Breaker, error) {
	b, err := newBreaker(ctx, js, service, "", "", cfg, slog.Default())
	if err != nil {
		return nil, err
	}
	return &Breaker{b}, nil
}

// Do calls fn unless the breaker is open. Its error counts towards
// opening the breaker, except a Permanent one; a refused call returns
// gobreaker.ErrOpenState or gobreaker.ErrTooManyRequests, which the runner
// gives back for later without counting it as a failure of the message.
func (b *Breaker) Do(fn func() error) error { return b.b.run(fn) }

// State is closed, half-open or open.
func (b *Breaker) State() string { return stateName(b.b.state()) }

// guard records which consumer the breaker's service reads, for the report.
func (b *Breaker) guard(stream, consumer string) {
	b.b.mu.Lock()
	defer b.b.mu.Unlock()
	b.b.stream, b.b.cons = stream, consumer
}

// change is a state change waiting to be reported.
type change struct {
	to gobreaker.State
	at time.Time
}

// breaker wraps gobreaker with reporting.
type breaker struct {
	cb      *gobreaker.CircuitBreaker[struct{}]
	cfg     BreakerConfig
	kv      jetstream.KeyValue
	key     string
	service string
	stream  string
	cons    string
	logger  *slog.Logger

	// observe, when set, is told each reported state (the runner's metric).
	observe func(breaker, state string)
	// changes carries state changes, in order, to the reporting goroutine:
	// a change is reported as the state it changed to, even if the breaker
	// has moved on since (half open for a few milliseconds, then closed).
	changes chan change

	// reportMu keeps reports whole when several runners share a breaker.
	reportMu sync.Mutex

	mu      sync.Mutex
	since   time.Time
	lastErr string
	// Kept here, not read from gobreaker, whose counts restart with each
	// state: the dashboard wants the failures that opened it. Atomic, so
	// a success (every call, from every worker) takes no lock.
	consecutive, total, requests atomic.Uint32
}

func newBreaker(ctx context.Context, js jetstream.JetStream, service, stream, consumer string, cfg BreakerConfig, logger *slog.Logger) (*breaker, error) {
	cfg.Name = cmp.Or(cfg.Name, "handler")
	cfg.Failures = cmp.Or(cfg.Failures, 5)
	cfg.OpenFor = cmp.Or(cfg.OpenFor, 30*time.Second)
	cfg.HalfOpenRequests = cmp.Or(cfg.HalfOpenRequests, 1)
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, 10*time.Second)
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		cfg.Instance = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	// Never lowers what an operator or jetwatch raised (its replicas).
	kv, err := ensure.KeyValue(ctx, js, BreakerBucketConfig())
	if err != nil {
		return nil, fmt.Errorf("service: breaker bucket %s: %w", BreakerBucket, err)
	}
	b := &breaker{cfg: cfg, kv: kv, key: BreakerKey(service, cfg.Name), service: service, stream: stream, cons: consumer,
		logger: logger, since: time.Now().UTC(), changes: make(chan change, 64)}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: cfg.HalfOpenRequests,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		// A message no retry can fix says nothing about the downstream.
		IsExcluded: IsPermanent,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			now := time.Now().UTC()
			b.mu.Lock()
			b.since = now
			b.mu.Unlock()
			logger.Warn("circuit breaker changed state", "breaker", cfg.Name, "from", stateName(from), "to", stateName(to))
			select {
			case b.changes <- change{to, now}:
			default: // a flood of changes: the next heartbeat reports the state
			}
		},
	})
	return b, nil
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// run calls fn through the breaker and notes its error. The counts are
// noted inside the call, before gobreaker counts it: a failure that opens
// the breaker is in the report of its opening.
func (b *breaker) run(fn func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := fn()
		b.requests.Add(1)
		switch {
		case err == nil:
			if b.consecutive.Load() != 0 {
				b.consecutive.Store(0)
			}
		case !IsPermanent(err):
			b.mu.Lock()
			b.consecutive.Add(1)
			b.total.Add(1)
			b.lastErr = err.Error()
			b.mu.Unlock()
		}
		return struct{}{}, err
	})
	return err
}

// state is the current state; reading it moves an open breaker whose time
// is up to half open.
func (b *breaker) state() gobreaker.State { return b.cb.State() }

// report writes the state, which began at since (zero: the latest change).
func (b *breaker) report(ctx context.Context, state string, since time.Time) {
	b.reportMu.Lock()
	defer b.reportMu.Unlock()
	b.mu.Lock()
	if since.IsZero() {
		since = b.since
	}
	r := BreakerReport{Service: b.service, Breaker: b.cfg.Name, Stream: b.stream, Consumer: b.cons, State: state, Since: since,
		Failures: b.consecutive.Load(), TotalFailures: b.total.Load(), Requests: b.requests.Load(),
		LastError: b.lastErr, Instance: b.cfg.Instance, HeartbeatEvery: b.cfg.Heartbeat.Seconds(), UpdatedAt: time.Now().UTC()}
	b.mu.Unlock()
	if b.observe != nil {
		b.observe(r.Breaker, r.State)
	}
	data, _ := json.Marshal(r)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.kv.Put(rctx, b.key, data); err != nil {
		b.logger.Warn("reporting the breaker state failed", "breaker", b.cfg.Name, "err", err)
	}
}

// heartbeat reports each state change, in order, and the current state
// every Heartbeat, until ctx ends. The runner reports the first state
// itself, before it fetches anything.
func (b *breaker) heartbeat(ctx context.Context) {
	t := time.NewTicker(b.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-b.changes:
			b.report(ctx, stateName(c.to), c.at)
		case <-t.C:
			// Changes first, so the current state is the last word.
			for drained := false; !drained; {
				select {
				case c := <-b.changes:
					b.report(ctx, stateName(c.to), c.at)
				default:
					drained = true
				}
			}
			b.report(ctx, stateName(b.cb.State()), time.Time{})
		}
	}
}
