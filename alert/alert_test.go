package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// clock is a settable clock for the evaluator, starting at the real time
// so it agrees with the times the server reports.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// CatchUp moves the clock to the real time if it is behind: what the
// server made since the test began (a consumer, a message) is not in the
// clock's future.
func (c *clock) CatchUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.After(c.now) {
		c.now = now
	}
}

// request is what the receiver got.
type request struct {
	header http.Header
	body   []byte
	path   string
}

// receiver is a webhook receiver answering with the statuses it is told,
// then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	answers  []int
	requests []request
	ok       []request
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	return newReceiverOn(t, nil, answers...)
}

// newReceiverOn serves on ln, or a new port when ln is nil.
func newReceiverOn(t *testing.T, ln net.Listener, answers ...int) *receiver {
	r := &receiver{answers: answers}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		status := http.StatusOK
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		r.requests = append(r.requests, request{req.Header.Clone(), body, req.URL.Path})
		if status == http.StatusOK {
			r.ok = append(r.ok, request{req.Header.Clone(), body, req.URL.Path})
		}
		w.WriteHeader(status)
	}))
	if ln != nil {
		r.Listener.Close()
		r.Listener = ln
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) delivered() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.ok...)
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

type testBundle struct {
	srv     *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	db      *store.DB
	sampler *collector.Sampler
	clock   *clock
	rules   *alert.Rules
	recv    *receiver
	reg     *prometheus.Registry
}

const secret = "s3cret"

// setup starts a real server and a real index, and loads rules whose
// receiver "ops" is an httptest server answering the given statuses.
func setup(t *testing.T, rules string, answers ...int) *testBundle {
	t.Helper()
	b := &testBundle{srv: natstest.RunServer(t), clock: &clock{now: time.Now()}}
	b.nc = natstest.Connect(t, b.srv)
	var err error
	b.js, err = jetstream.New(b.nc)
	require.NoError(t, err)
	b.db, err = store.OpenFile(context.Background(), filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { b.db.Close() })
	b.sampler, err = collector.NewSampler(b.nc, b.db, collector.SamplerConfig{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	b.recv = newReceiver(t, answers...)
	src := fmt.Sprintf("receivers:\n  - {name: ops, url: %q, format: json, secret: %s}\n%s", b.recv.URL+"/hook", secret, rules)
	b.rules, err = alert.Parse([]byte(src), "rules.yaml", nil)
	require.NoError(t, err)
	return b
}

func (b *testBundle) evaluator(t *testing.T, db *store.DB, now func() time.Time) *alert.Evaluator {
	t.Helper()
	e, err := alert.NewEvaluator(b.js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return b.rules },
		Index: db, DeadLetters: query.New(db, nil, ""), Now: now, Registerer: b.registry(db)})
	require.NoError(t, err)
	return e
}

// registry is where the evaluator of the bundle's own index registers,
// so a test can read its metrics; other evaluators get their own.
func (b *testBundle) registry(db *store.DB) *prometheus.Registry {
	if db == b.db && b.reg == nil {
		b.reg = prometheus.NewRegistry()
		return b.reg
	}
	return prometheus.NewRegistry()
}

func (b *testBundle) sender(t *testing.T, db *store.DB) *alert.Sender {
	t.Helper()
	s, err := alert.NewSender(b.js, alert.SenderConfig{Rules: func() *alert.Rules { return b.rules },
		Log: alert.NewDeliveryLog(db), Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	return s
}

// evaluate samples the server into the index and evaluates once.
func (b *testBundle) evaluate(t *testing.T, e *alert.Evaluator) {
	t.Helper()
	_, err := b.sampler.SampleOnce(context.Background())
	require.NoError(t, err)
	require.NoError(t, e.Evaluate(context.Background()))
}

func state(t *testing.T, e *alert.Evaluator, rule string) string {
	t.Helper()
	statuses, _ := e.Statuses()
	for _, s := range statuses {
		if s.Rule.Name == rule {
			return s.State
		}
	}
	t.Fatalf("rule %s not evaluated", rule)
	return ""
}

// notifications decodes what the receiver accepted, in order.
func notifications(t *testing.T, r *receiver) []alert.Notification {
	t.Helper()
	var out []alert.Notification
	for _, req := range r.delivered() {
		var n alert.Notification
		require.NoError(t, json.Unmarshal(req.body, &n))
		out = append(out, n)
	}
	return out
}

// waitNotifications waits until the receiver accepted n notifications.
func waitNotifications(t *testing.T, r *receiver, n int) []alert.Notification {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got := len(r.delivered()); got < n {
			return fmt.Errorf("receiver accepted %d notifications, want %d", got, n)
		}
		return nil
	})
	return notifications(t, r)
}

// orders makes stream ORDERS with a pull consumer billing and n messages
// pending for it.
func (b *testBundle) orders(t *testing.T, n int) jetstream.Consumer {
	t.Helper()
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 100})
	require.NoError(t, err)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for i := range n {
		_, err := b.js.Publish(ctx, fmt.Sprintf("orders.%d", i), []byte("{}"))
		require.NoError(t, err)
	}
	return cons
}

// drain acknowledges every pending message of cons.
func drain(t *testing.T, cons jetstream.Consumer) {
	t.Helper()
	for {
		batch, err := cons.FetchNoWait(100)
		require.NoError(t, err)
		n := 0
		for m := range batch.Messages() {
			require.NoError(t, m.Ack())
			n++
		}
		require.NoError(t, batch.Error())
		if n == 0 {
			info, err := cons.Info(context.Background())
			require.NoError(t, err)
			if info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
	}
}

const lagRule = `rules:
  - name: billing-lag
    kind: consumer_lag
    stream: ORDERS
    consumer: billing
    above: 10
    for: 5s
    receivers: [ops]
`

func TestConsumerLagFiresAfterForThenResolvesSigned(t *testing.T) {
	t.Parallel()
	b := setup(t, lagRule)
	cons := b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)

	b.evaluate(t, e)
	require.Equal(t, alert.StatePending, state(t, e, "billing-lag"))
	b.clock.Advance(3 * time.Second)
	b.evaluate(t, e)
	require.Equal(t, alert.StatePending, state(t, e, "billing-lag"), "for: 5s has not passed")
	b.clock.Advance(3 * time.Second)
	b.evaluate(t, e)
	require.Equal(t, alert.StateFiring, state(t, e, "billing-lag"))
	require.InDelta(t, 1, firing(t, b.reg), 0)
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, alert.StatusFiring, got[0].Status)
	require.Equal(t, "billing-lag", got[0].Rule)
	require.Equal(t, map[string]string{"stream": "ORDERS", "consumer": "billing"}, got[0].Labels)
	require.InDelta(t, 20, got[0].Value, 0)

	req := b.recv.delivered()[0]
	require.Equal(t, got[0].ID, req.header.Get(alert.IdempotencyHeader))
	require.NoError(t, verifySignature(secret, req.header.Get(alert.SignatureHeader), req.body, time.Now()))
	tampered := append([]byte(nil), req.body...)
	tampered[len(tampered)-2] = ' '
	require.Error(t, verifySignature(secret, req.header.Get(alert.SignatureHeader), tampered, time.Now()), "a changed body must not verify")
	require.Error(t, verifySignature("other", req.header.Get(alert.SignatureHeader), req.body, time.Now()))
	require.NoError(t, alert.Verify(secret, req.header.Get(alert.SignatureHeader), req.body, time.Now(), time.Minute))
	require.Error(t, alert.Verify(secret, req.header.Get(alert.SignatureHeader), tampered, time.Now(), time.Minute))
	require.Error(t, verifySignature(secret, req.header.Get(alert.SignatureHeader), req.body, time.Now().Add(time.Hour)), "an old signature is a replay")

	drain(t, cons)
	b.clock.Advance(time.Second)
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "billing-lag"))
	require.InDelta(t, 0, firing(t, b.reg), 0)
	got = waitNotifications(t, b.recv, 2)
	require.Equal(t, alert.StatusResolved, got[1].Status)
	require.Equal(t, got[0].Fingerprint, got[1].Fingerprint)
	require.Equal(t, got[0].StartsAt, got[1].StartsAt)
	require.False(t, got[1].EndsAt.IsZero())
	require.NotEqual(t, got[0].ID, got[1].ID)
}

func TestBlipShorterThanForDoesNotPage(t *testing.T) {
	t.Parallel()
	b := setup(t, lagRule)
	cons := b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.evaluate(t, e)
	require.Equal(t, alert.StatePending, state(t, e, "billing-lag"))
	b.clock.Advance(4 * time.Second)
	drain(t, cons)
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "billing-lag"))
	// The lag comes back: the for period starts again.
	_, err := b.js.Publish(context.Background(), "orders.again", nil)
	require.NoError(t, err)
	b.clock.Advance(4 * time.Second)
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "billing-lag"), "1 pending is not above 10")

	st, err := b.js.Stream(context.Background(), alert.DefaultOutboxStream)
	require.NoError(t, err)
	require.Zero(t, st.CachedInfo().State.Msgs, "nothing may be queued for a blip")
}

// firing is jetwatch_alerts_firing{rule="billing-lag"} as gathered.
func firing(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "jetwatch_alerts_firing" {
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == "billing-lag" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal("jetwatch_alerts_firing{rule=billing-lag} not registered")
	return 0
}
