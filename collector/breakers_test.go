package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/internal/seriescap"
	"github.com/jetwatch/jetwatch/service"
	"github.com/jetwatch/jetwatch/store"
)

// TestBreakerWatcherFollowsARealService runs a service whose downstream
// fails, and follows its breaker on the dashboard's side: open, then
// closed, with transitions, metrics, and stale once the service stops.
func TestBreakerWatcherFollowsARealService(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w, err := NewBreakerWatcher(b.js, b.db, BreakerWatcherConfig{Registerer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(w.Stop)

	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "MAIL", Subjects: []string{"mail.>"}})
	require.NoError(t, err)
	_, err = b.js.CreateOrUpdateConsumer(ctx, "MAIL", jetstream.ConsumerConfig{Durable: "sender", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for range 10 {
		_, err := b.js.Publish(ctx, "mail.send", []byte("hello"))
		require.NoError(t, err)
	}
	var down atomic.Bool
	down.Store(true)
	r, err := service.New(ctx, b.js, service.Config{Stream: "MAIL", Consumer: "sender", Service: "mailer", Concurrency: 1,
		Backoff: []time.Duration{10 * time.Millisecond}, Logger: testLogger(t),
		Breaker: &service.BreakerConfig{Name: "smtp", Failures: 2, OpenFor: 300 * time.Millisecond, Heartbeat: 100 * time.Millisecond},
		Handler: func(ctx context.Context, m jetstream.Msg) error {
			if down.Load() {
				return errors.New("smtp: 421 service not available")
			}
			return nil
		}})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))

	breaker := func() (store.Breaker, error) {
		all, err := b.db.Breakers(ctx, time.Now())
		if err != nil || len(all) != 1 {
			return store.Breaker{}, fmt.Errorf("breakers %v: %w", all, err)
		}
		return all[0], nil
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		br, err := breaker()
		if err != nil {
			return err
		}
		if br.State != store.BreakerOpen {
			return fmt.Errorf("state %s", br.State)
		}
		require.Equal(t, "smtp: 421 service not available", br.LastError)
		return nil
	})
	require.Equal(t, 2.0, gaugeValue(t, gatherAll(t, reg), "jetwatch_breaker_state", map[string]string{"service": "mailer", "breaker": "smtp"}))
	down.Store(false)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		br, err := breaker()
		if err != nil {
			return err
		}
		if br.State != store.BreakerClosed {
			return fmt.Errorf("state %s", br.State)
		}
		return nil
	})
	trs, err := b.db.BreakerTransitions(ctx, "mailer", "smtp", 10)
	require.NoError(t, err)
	var path []string
	for i := len(trs) - 1; i >= 0; i-- {
		path = append(path, trs[i].To)
	}
	require.Equal(t, []string{store.BreakerClosed, store.BreakerOpen, store.BreakerHalfOpen, store.BreakerClosed}, path)

	r.Stop()
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		br, err := breaker()
		if err != nil {
			return err
		}
		if !br.Stale {
			return fmt.Errorf("not stale yet")
		}
		return nil
	})
}

// TestBreakerReportsSpeakOnlyForTheirKey: a report under a key its names
// do not make is ignored (it would speak for another service's breaker,
// or make up any number of them), and deleting a report from the bucket
// (an operator retiring a service) makes the dashboard and the metrics
// forget its breaker.
func TestBreakerReportsSpeakOnlyForTheirKey(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w, err := NewBreakerWatcher(b.js, b.db, BreakerWatcherConfig{Registerer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(w.Stop)
	kv, err := b.js.KeyValue(ctx, DefaultBreakerBucket)
	require.NoError(t, err)
	report := func(key, svc, name, state string) {
		now := time.Now().UTC()
		data, err := json.Marshal(store.Breaker{Service: svc, Breaker: name, State: state, Since: now, UpdatedAt: now,
			HeartbeatSeconds: 60, Instance: "i-1"})
		require.NoError(t, err)
		_, err = kv.Put(ctx, key, data)
		require.NoError(t, err)
	}
	shown := func() ([]string, error) {
		all, err := b.db.Breakers(ctx, time.Now())
		var out []string
		for _, br := range all {
			out = append(out, br.Service+"/"+br.Breaker+"="+br.State)
		}
		return out, err
	}
	report(service.BreakerKey("mailer", "smtp"), "mailer", "smtp", store.BreakerOpen)
	report(service.BreakerKey("mailer", "smtp"), "billing", "stripe", store.BreakerClosed) // another's names
	report("billing.other", "billing", "made up", store.BreakerOpen)
	// Written after the forgeries: once it shows, they have been read.
	report(service.BreakerKey("mailer", "imap"), "mailer", "imap", store.BreakerClosed)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		got, err := shown()
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"mailer/smtp=open", "mailer/imap=closed"}) {
			return fmt.Errorf("breakers %v", got)
		}
		// The series is set right after the row.
		if n := len(gatherAll(t, reg)["jetwatch_breaker_state"].GetMetric()); n != 2 {
			return fmt.Errorf("%d breaker series", n)
		}
		return nil
	})
	families := gatherAll(t, reg)
	require.Equal(t, 2.0, gaugeValue(t, families, "jetwatch_breaker_state", map[string]string{"service": "mailer", "breaker": "smtp"}))
	require.Len(t, families["jetwatch_breaker_state"].GetMetric(), 2, "no series for the forged reports")

	require.NoError(t, kv.Delete(ctx, service.BreakerKey("mailer", "smtp")))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		got, err := shown()
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"mailer/imap=closed"}) {
			return fmt.Errorf("breakers %v", got)
		}
		// The series goes right after the row.
		if n := len(gatherAll(t, reg)["jetwatch_breaker_state"].GetMetric()); n != 1 {
			return fmt.Errorf("%d breaker series", n)
		}
		return nil
	})
	families = gatherAll(t, reg)
	require.Equal(t, 0.0, gaugeValue(t, families, "jetwatch_breaker_state", map[string]string{"service": "mailer", "breaker": "imap"}))
	// Its history stays until it expires.
	trs, err := b.db.BreakerTransitions(ctx, "mailer", "smtp", 10)
	require.NoError(t, err)
	require.NotEmpty(t, trs)
}

// TestBreakerReportsAreBounded: what a report claims is bounded. A
// heartbeat of a million hours or a last report in the future would keep
// an open breaker from ever going stale (and holding every bulk
// redelivery to its consumer); the last report is when the bucket got
// it, the heartbeat at most an hour, and the texts kept short.
func TestBreakerReportsAreBounded(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	w, err := NewBreakerWatcher(b.js, b.db, BreakerWatcherConfig{Registerer: prometheus.NewRegistry(), Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(w.Stop)
	kv, err := b.js.KeyValue(ctx, DefaultBreakerBucket)
	require.NoError(t, err)
	future := time.Now().Add(1000 * time.Hour).UTC()
	data, err := json.Marshal(store.Breaker{Service: "mailer", Breaker: "smtp", State: store.BreakerOpen, Since: future,
		UpdatedAt: future, HeartbeatSeconds: 3.6e9, LastError: strings.Repeat("é", 50_000), Instance: strings.Repeat("i", 5000)})
	require.NoError(t, err)
	before := time.Now()
	_, err = kv.Put(ctx, service.BreakerKey("mailer", "smtp"), data)
	require.NoError(t, err)
	var br store.Breaker
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		all, err := b.db.Breakers(ctx, time.Now())
		if err != nil || len(all) != 1 {
			return fmt.Errorf("breakers %v: %w", all, err)
		}
		br = all[0]
		return nil
	})
	require.WithinDuration(t, before, br.UpdatedAt, 5*time.Second, "when the bucket got it")
	require.WithinDuration(t, br.UpdatedAt, br.Since, time.Second, "not begun in the future")
	require.Equal(t, time.Hour.Seconds(), br.HeartbeatSeconds)
	require.LessOrEqual(t, len(br.LastError), 1024)
	require.True(t, utf8.ValidString(br.LastError))
	require.True(t, strings.HasSuffix(br.LastError, "…"))
	require.LessOrEqual(t, len(br.Instance), 256)
	// Three hours of silence later, it is stale.
	later, err := b.db.Breakers(ctx, br.UpdatedAt.Add(3*time.Hour+time.Second))
	require.NoError(t, err)
	require.True(t, later[0].Stale)
}

// TestBreakerSeriesAreCapped: past the cap a breaker is stored and shown
// but gets no series; a forgotten one makes room.
func TestBreakerSeriesAreCapped(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w, err := NewBreakerWatcher(b.js, b.db, BreakerWatcherConfig{Registerer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	w.series = seriescap.New(1)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(w.Stop)
	kv, err := b.js.KeyValue(ctx, DefaultBreakerBucket)
	require.NoError(t, err)
	report := func(svc, name string) {
		now := time.Now().UTC()
		data, err := json.Marshal(store.Breaker{Service: svc, Breaker: name, State: store.BreakerOpen, Since: now, UpdatedAt: now})
		require.NoError(t, err)
		_, err = kv.Put(ctx, service.BreakerKey(svc, name), data)
		require.NoError(t, err)
	}
	shown := func(want ...string) func() error {
		return func() error {
			all, err := b.db.Breakers(ctx, time.Now())
			if err != nil {
				return err
			}
			var got []string
			for _, br := range all {
				got = append(got, br.Service+"/"+br.Breaker)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("breakers %v, want %v", got, want)
			}
			return nil
		}
	}
	seriesOf := func() []string {
		var out []string
		for _, m := range gatherAll(t, reg)["jetwatch_breaker_state"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" {
					out = append(out, l.GetValue())
				}
			}
		}
		return out
	}
	report("a", "x")
	report("b", "x")
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, shown("a/x", "b/x"))
	// a was done with (its series set) before b was read.
	require.Equal(t, []string{"a"}, seriesOf(), "b is past the cap")
	require.NoError(t, kv.Delete(ctx, service.BreakerKey("a", "x")))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, shown("b/x"))
	report("c", "x")
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if err := shown("b/x", "c/x")(); err != nil {
			return err
		}
		// Its series is set right after its row: a's room went to c.
		if got := seriesOf(); !slices.Equal(got, []string{"c"}) {
			return fmt.Errorf("series of %v", got)
		}
		return nil
	})
}
