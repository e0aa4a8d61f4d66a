package collector

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/internal/natsname"
)

// RelayPrefix starts the subjects relayed advisories are captured on:
// jetwatch.relay.<the advisory's own subject>. jetwatch never publishes
// on $JS.EVENT.> itself, which NATS permissions should reserve to the
// server.
const RelayPrefix = "jetwatch.relay."

// relayedSubjects are the advisories relayed: those that carry dead
// letters. Losing one loses a failed message; the rest only miss an entry
// of the timeline.
var relayedSubjects = []string{
	"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
	"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	Streams StreamsConfig
	// MaxPending bounds the advisories waiting for the capture stream to
	// take them. Defaults to 50,000.
	MaxPending int
	// GiveUpAfter is how long an advisory is retried before it is dropped;
	// past the stream's duplicate window a late copy could be stored
	// twice. Defaults to 90 seconds.
	GiveUpAfter time.Duration
	// Timeout bounds each publish. Defaults to 2 seconds.
	Timeout time.Duration
	// Registerer receives the relay's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Relay closes the gap of a capture stream without a leader. The server
// sends each advisory once, as a core message; while the advisory stream
// elects a leader, nobody stores it and the dead letter it points at is
// lost. Every jetwatch replica therefore also receives the dead-letter
// advisories on a core subscription and publishes a copy into the capture
// stream, retrying until a leader takes it. The copy's message id is a
// hash of the advisory's body, so the replicas' copies are stored once;
// the original, when it was captured too, shares that hash, which is how
// the bridge and the timeline take the two as one.
type Relay struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    RelayConfig
	logger *slog.Logger

	results *prometheus.CounterVec
	pending prometheus.Gauge

	mu    sync.Mutex
	queue []relayed
	wake  chan struct{}
	subs  []*nats.Subscription

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// relayed is one advisory waiting to be stored.
type relayed struct {
	msg      *nats.Msg
	received time.Time
	retried  bool
}

// NewRelay returns a relay on nc.
func NewRelay(nc *nats.Conn, cfg RelayConfig) (*Relay, error) {
	cfg.Streams = cfg.Streams.withDefaults()
	cfg.MaxPending = cmp.Or(cfg.MaxPending, 50_000)
	cfg.GiveUpAfter = cmp.Or(cfg.GiveUpAfter, 90*time.Second)
	cfg.Timeout = cmp.Or(cfg.Timeout, 2*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	// Without a leader, a publish is never answered: the timeout ends it.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.Timeout), jetstream.WithPublishAsyncMaxPending(relayChunk))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	r := &Relay{nc: nc, js: js, cfg: cfg, logger: cfg.Logger.With("component", "relay"), wake: make(chan struct{}, 1),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jetwatch_advisory_relay_total",
			Help: "Dead-letter advisories relayed into the capture stream, by result: stored, duplicate (stored already), retried (no leader yet), dropped (given up, or the queue was full), invalid (not relayable).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jetwatch_advisory_relay_pending",
			Help: "Dead-letter advisories waiting for the capture stream to take them.",
		}),
	}
	if err := register(cfg.Registerer, "relay", r.results, r.pending); err != nil {
		return nil, err
	}
	return r, nil
}

// Start subscribes to the dead-letter advisories and relays them in the
// background.
func (r *Relay) Start(ctx context.Context) error {
	for _, subject := range relayedSubjects {
		sub, err := r.nc.Subscribe(subject, r.receive)
		if err != nil {
			r.unsubscribe()
			return fmt.Errorf("subscribe to %s: %w", subject, err)
		}
		// A storm must not be dropped by the client: the queue below is
		// what bounds it.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			r.unsubscribe()
			return fmt.Errorf("subscribe to %s: %w", subject, err)
		}
		r.subs = append(r.subs, sub)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = cancel, make(chan struct{})
	go r.run(ctx)
	return nil
}

// Stop stops relaying; what is still pending is left to the capture
// stream's own copy. Safe to call twice.
func (r *Relay) Stop() {
	r.stopOnce.Do(func() {
		r.unsubscribe()
		if r.stop != nil {
			r.stop()
			<-r.done
		}
	})
}

func (r *Relay) unsubscribe() {
	for _, s := range r.subs {
		s.Unsubscribe() //nolint:errcheck // stopping anyway
	}
	r.subs = nil
}

// receive queues an advisory for the capture stream.
func (r *Relay) receive(m *nats.Msg) {
	out, ok := relayMsg(m)
	if !ok {
		r.results.WithLabelValues("invalid").Inc()
		return
	}
	r.mu.Lock()
	if len(r.queue) >= r.cfg.MaxPending {
		r.mu.Unlock()
		r.results.WithLabelValues("dropped").Inc()
		return
	}
	r.queue = append(r.queue, relayed{msg: out, received: time.Now()})
	r.pending.Set(float64(len(r.queue)))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// relayMsg is the copy of advisory m to publish, or false when it cannot
// be relayed (its subject would be too long for the server).
func relayMsg(m *nats.Msg) (*nats.Msg, bool) {
	subject := RelayPrefix + m.Subject
	if natsname.Subject(subject) != nil {
		return nil, false
	}
	out := nats.NewMsg(subject)
	out.Data = m.Data
	out.Header.Set(jetstream.MsgIDHeader, "advisory:"+advisoryID(m.Data))
	return out, true
}

// advisoryID names an advisory by a hash of its body: the relay copies the
// body as the server sent it, so every replica's copy and the original
// share it, while an advisory forged with another's "id" field does not.
func advisoryID(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// run publishes what is queued, asynchronously, and puts back what the
// stream did not take.
func (r *Relay) run(ctx context.Context) {
	defer close(r.done)
	backoff := 100 * time.Millisecond
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		r.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
			continue
		}
		failed := r.publish(ctx, batch)
		r.mu.Lock()
		r.queue = append(failed, r.queue...)
		r.pending.Set(float64(len(r.queue)))
		r.mu.Unlock()
		if len(failed) == 0 {
			backoff = 100 * time.Millisecond
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// relayChunk is how many copies are in flight at once.
const relayChunk = 1000

// publish sends batch and returns what must be tried again.
func (r *Relay) publish(ctx context.Context, batch []relayed) []relayed {
	var again []relayed
	for len(batch) > 0 {
		n := min(len(batch), relayChunk)
		chunk := batch[:n]
		batch = batch[n:]
		futs := make([]jetstream.PubAckFuture, len(chunk))
		for i, p := range chunk {
			// A new message each time: nats.go keeps a sent message's state.
			msg := nats.NewMsg(p.msg.Subject)
			msg.Data, msg.Header = p.msg.Data, p.msg.Header
			futs[i], _ = r.js.PublishMsgAsync(msg, jetstream.WithExpectStream(r.cfg.Streams.Advisories))
		}
		for i, p := range chunk {
			err := error(nats.ErrDisconnected)
			if futs[i] != nil {
				select {
				case ack := <-futs[i].Ok():
					result := "stored"
					if ack.Duplicate {
						result = "duplicate"
					}
					r.results.WithLabelValues(result).Inc()
					continue
				case err = <-futs[i].Err(): // a timeout too, with no leader
				case <-ctx.Done():
					return nil
				}
			}
			if time.Since(p.received) > r.cfg.GiveUpAfter {
				r.results.WithLabelValues("dropped").Inc()
				r.logger.Error("a dead-letter advisory was dropped: the capture stream did not take it in time; its dead letter may be missing",
					"subject", clip(p.msg.Subject), "waited", time.Since(p.received).Round(time.Second), "err", err)
				continue
			}
			if !p.retried {
				r.results.WithLabelValues("retried").Inc()
				p.retried = true
			}
			again = append(again, p)
		}
	}
	return again
}

// relayedCopies are the subjects of the relay's copies of relayedSubjects.
func relayedCopies() []string {
	out := make([]string, len(relayedSubjects))
	for i, s := range relayedSubjects {
		out[i] = RelayPrefix + s
	}
	return out
}

// recentIDs remembers the last n ids added, for concurrent use.
type recentIDs struct {
	mu    sync.Mutex
	ids   map[string]struct{}
	order []string
	next  int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{ids: make(map[string]struct{}, n), order: make([]string, n)}
}

func (r *recentIDs) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}

func (r *recentIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return
	}
	delete(r.ids, r.order[r.next])
	r.order[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.order)
}
