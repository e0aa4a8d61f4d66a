package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

func (b *bundle) breakerReport(t *testing.T) (BreakerReport, error) {
	t.Helper()
	kv, err := b.js.KeyValue(b.ctx, BreakerBucket)
	if err != nil {
		return BreakerReport{}, err
	}
	e, err := kv.Get(b.ctx, BreakerKey("resizer", "thumbnails-api"))
	if err != nil {
		return BreakerReport{}, err
	}
	var r BreakerReport
	return r, json.Unmarshal(e.Value(), &r)
}

func TestBreakerOpensStopsFetchingHalfOpensAndCloses(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{MaxDeliver: -1})
	b.publish(t, 20)

	var mu sync.Mutex
	var calls []time.Time
	var down atomic.Bool
	down.Store(true)
	r := b.runner(t, Config{Concurrency: 1, Backoff: []time.Duration{10 * time.Millisecond},
		Breaker: &BreakerConfig{Name: "thumbnails-api", Failures: 3, OpenFor: 700 * time.Millisecond, Heartbeat: 100 * time.Millisecond},
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
			if down.Load() {
				return errors.New("thumbnails-api: connection refused")
			}
			return nil
		}})

	// Three failures in a row open it; the report says so.
	var opened BreakerReport
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		rep, err := b.breakerReport(t)
		if err != nil {
			return err
		}
		if rep.State != BreakerOpen {
			return fmt.Errorf("breaker %s", rep.State)
		}
		opened = rep
		return nil
	})
	require.Equal(t, "thumbnails-api: connection refused", opened.LastError)
	require.Equal(t, uint32(3), opened.Failures)
	down.Store(false) // the downstream comes back while the breaker is open

	// It half-opens after OpenFor, lets one through, and closes.
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		rep, err := b.breakerReport(t)
		if err != nil {
			return err
		}
		if rep.State != BreakerClosed || rep.Since.Before(opened.Since) || rep.Since.Equal(opened.Since) {
			return fmt.Errorf("breaker %s since %s", rep.State, rep.Since)
		}
		return nil
	})
	// While it was open, nothing was delivered to the handler.
	mu.Lock()
	var during int
	for _, c := range calls {
		if c.After(opened.Since.Add(50*time.Millisecond)) && c.Before(opened.Since.Add(650*time.Millisecond)) {
			during++
		}
	}
	mu.Unlock()
	require.Zero(t, during, "no message was fetched while the breaker was open")
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})

	// The service stops: its report stops being refreshed, which is how
	// the dashboard tells a stale breaker.
	r.Stop()
	last, err := b.breakerReport(t)
	require.NoError(t, err)
	require.Equal(t, 0.1, last.HeartbeatEvery)
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if time.Since(last.UpdatedAt) < 3*100*time.Millisecond {
			return fmt.Errorf("not stale yet")
		}
		rep, err := b.breakerReport(t)
		if err != nil {
			return err
		}
		if !rep.UpdatedAt.Equal(last.UpdatedAt) {
			return fmt.Errorf("still reporting after Stop")
		}
		return nil
	})
}

func TestDownstreamBreakerGatesFetching(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.LimitsPolicy, jetstream.ConsumerConfig{MaxDeliver: -1})
	b.publish(t, 20)
	smtp, err := NewBreaker(b.ctx, b.js, "resizer", BreakerConfig{Name: "thumbnails-api", Failures: 2, OpenFor: 500 * time.Millisecond, Heartbeat: 100 * time.Millisecond})
	require.NoError(t, err)
	var mu sync.Mutex
	var calls []time.Time
	var down atomic.Bool
	down.Store(true)
	reg := prometheus.NewRegistry()
	b.runner(t, Config{Concurrency: 1, Backoff: []time.Duration{10 * time.Millisecond}, Downstreams: []*Breaker{smtp}, Registerer: reg,
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
			return smtp.Do(func() error {
				if down.Load() {
					return errors.New("503")
				}
				return nil
			})
		}})
	var opened BreakerReport
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		rep, err := b.breakerReport(t)
		if err != nil {
			return err
		}
		if rep.State != BreakerOpen {
			return fmt.Errorf("breaker %s", rep.State)
		}
		opened = rep
		return nil
	})
	require.Equal(t, "JOBS", opened.Stream, "the runner names the consumer the breaker's service reads")
	require.Equal(t, "worker", opened.Consumer)
	require.Equal(t, BreakerOpen, smtp.State())
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		families, err := reg.Gather()
		if err != nil {
			return err
		}
		for _, f := range families {
			if f.GetName() == "jetwatch_service_breaker_state" && f.GetMetric()[0].GetGauge().GetValue() == 2 {
				return nil
			}
		}
		return fmt.Errorf("jetwatch_service_breaker_state is not 2 (open) yet")
	})
	down.Store(false)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info := b.consumerInfo(t)
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, c := range calls {
		if c.After(opened.Since.Add(50*time.Millisecond)) && c.Before(opened.Since.Add(450*time.Millisecond)) {
			t.Fatalf("a message was handled at %s while the breaker (open at %s) was open", c, opened.Since)
		}
	}
}
