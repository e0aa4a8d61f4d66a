package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// lagClock is the sampler's and the server's clock, moved by the test.
type lagClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *lagClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lagClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// apiLag is the lag part of a consumer as the API shows it.
type apiLag struct {
	Name      string   `json:"name"`
	LagState  string   `json:"lag_state"`
	Arrival   float64  `json:"arrival_per_second"`
	Ack       float64  `json:"ack_per_second"`
	Drain     *float64 `json:"drain_seconds"`
	WindowSec float64  `json:"lag_window_seconds"`
	Health    struct {
		Level string `json:"level"`
	} `json:"health"`
}

// TestConsumerLagIsTheSameOnThePageAndInTheAPI samples a real consumer
// that falls behind and then drains, and reads its lag from the consumer
// page, the stream page and both consumer APIs: they agree.
func TestConsumerLagIsTheSameOnThePageAndInTheAPI(t *testing.T) {
	t.Parallel()
	clock := &lagClock{now: time.Now()}
	srv, b := setup(t, func(cfg *Config) { cfg.Now = clock.Now })
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	shipping, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "shipping", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	sampler, err := collector.NewSampler(nc, b.db, collector.SamplerConfig{Interval: 10 * time.Second, Now: clock.Now,
		Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)

	pending := 0
	step := func(publish, ack int) {
		t.Helper()
		for i := range publish {
			_, err := js.Publish(ctx, fmt.Sprintf("orders.%d", i), []byte("{}"))
			require.NoError(t, err)
		}
		for left := ack; left > 0; {
			batch, err := shipping.Fetch(left, jetstream.FetchMaxWait(2*time.Second))
			require.NoError(t, err)
			for m := range batch.Messages() {
				require.NoError(t, m.DoubleAck(ctx))
				left--
			}
			require.NoError(t, batch.Error())
		}
		pending += publish - ack
		natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			info, err := shipping.Info(ctx)
			if err != nil {
				return err
			}
			if int(info.NumPending) != pending {
				return fmt.Errorf("shipping has %d pending, want %d", info.NumPending, pending)
			}
			return nil
		})
		clock.Advance(10 * time.Second)
		_, err := sampler.SampleOnce(ctx)
		require.NoError(t, err)
	}
	// same reads the lag from every place that shows it and checks they
	// agree; it returns the API's.
	same := func() apiLag {
		t.Helper()
		res, body := get(t, srv, "/api/v1/streams/ORDERS/consumers/shipping")
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var one apiLag
		require.NoError(t, json.Unmarshal([]byte(body), &one))
		res, body = get(t, srv, "/api/v1/streams/ORDERS/consumers")
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var list struct{ Items []apiLag }
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		require.Len(t, list.Items, 1)
		require.Equal(t, one, list.Items[0], "the list and the consumer's own answer agree")

		res, page := get(t, srv, "/streams/ORDERS/consumers/shipping")
		require.Equal(t, http.StatusOK, res.StatusCode)
		doc := parse(t, page)
		badge := nodes(doc, "lag-state")
		require.Len(t, badge, 1)
		require.Equal(t, one.LagState, attr(badge[0], "data-state"))
		require.Equal(t, views.LagLabel(one.LagState), text(badge[0]))
		require.Equal(t, []string{views.Rate(one.Arrival)}, byTestID(t, page, "lag-arrival"))
		require.Equal(t, []string{views.Rate(one.Ack)}, byTestID(t, page, "lag-ack"))
		if one.Drain != nil {
			require.Equal(t, []string{"about " + views.Duration(time.Duration(*one.Drain*float64(time.Second)))}, byTestID(t, page, "lag-drain"))
		} else {
			require.Empty(t, byTestID(t, page, "lag-drain"))
		}
		require.Equal(t, one.Health.Level, attr(nodes(doc, "health-badge")[0], "data-level"), "the health badge is the API's")

		_, page = get(t, srv, "/streams/ORDERS")
		rows := nodes(parse(t, page), "consumer-row")
		require.Len(t, rows, 1)
		require.Equal(t, one.LagState, attr(nodes(rows[0], "lag-state")[0], "data-state"))
		require.Equal(t, one.Health.Level, attr(rows[0], "data-level"))
		return one
	}

	// 20 arrive and 12 are acknowledged every 10 s.
	step(100, 0)
	for range 5 {
		step(20, 12)
	}
	got := same()
	require.Equal(t, store.LagFallingBehind, got.LagState)
	require.Equal(t, store.HealthWarning, got.Health.Level, "falling behind is not ok")
	require.InDelta(t, 2.0, got.Arrival, 0.001)
	require.InDelta(t, 1.2, got.Ack, 0.001)
	require.InDelta(t, 50, got.WindowSec, 0.001)
	require.Nil(t, got.Drain)

	// Nothing more arrives; 40 are acknowledged every 10 s.
	for got.LagState != store.LagDraining {
		require.Positive(t, pending, "never judged draining")
		step(0, 40)
		got = same()
	}
	require.Equal(t, store.HealthOK, got.Health.Level)
	require.NotNil(t, got.Drain)
	require.Positive(t, *got.Drain)
}
