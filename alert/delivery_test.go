package alert_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// settled waits until the outbox is empty and nothing is being sent, so a
// count taken after it is final.
func settled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, err := js.Stream(context.Background(), alert.DefaultOutboxStream)
		if err != nil {
			return err
		}
		if n := st.CachedInfo().State.Msgs; n > 0 {
			return fmt.Errorf("%d notifications still in the outbox", n)
		}
		return nil
	})
}

func TestReceiverFailingThenOKGetsExactlyOneDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1), http.StatusInternalServerError, http.StatusInternalServerError)
	b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	b.evaluate(t, e)
	got := waitNotifications(t, b.recv, 1)
	settled(t, b.js)
	require.Len(t, notifications(t, b.recv), 1)
	require.Equal(t, 3, b.recv.attempts(), "two failures, then the success")
	require.Equal(t, got[0].ID, b.recv.requests[0].header.Get(alert.IdempotencyHeader), "every attempt carries the same key")
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		log, err := alert.NewDeliveryLog(b.db).Recent(context.Background(), 10)
		if err != nil {
			return err
		}
		if len(log) != 1 || log[0].Result != alert.ResultDelivered || log[0].Attempts != 3 || log[0].HTTPStatus != 200 {
			return fmt.Errorf("delivery log %+v, want one delivered after 3 attempts", log)
		}
		return nil
	})
}

func TestReceiverDownAcrossRestartGetsTheNotificationOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	// The receiver's address, with nothing listening yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	b.rules.Receivers[0].URL = "http://" + addr + "/hook"

	b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	first, err := alert.NewSender(b.js, alert.SenderConfig{Rules: func() *alert.Rules { return b.rules },
		Log: alert.NewDeliveryLog(b.db), Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, first.Start(context.Background()))
	b.evaluate(t, e)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		log, err := alert.NewDeliveryLog(b.db).Recent(context.Background(), 10)
		if err != nil {
			return err
		}
		if len(log) != 1 || log[0].Result != alert.ResultRetrying || log[0].Attempts < 2 {
			return fmt.Errorf("delivery log %+v, want retries to a receiver that is down", log)
		}
		return nil
	})
	first.Stop() // jetwatch stops while the receiver is still down

	// The receiver comes up at its address; jetwatch starts again.
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	b.recv = newReceiverOn(t, ln)
	db2, err := store.OpenFile(context.Background(), b.db.Path())
	require.NoError(t, err)
	t.Cleanup(func() { db2.Close() })
	b.sender(t, db2)
	got := waitNotifications(t, b.recv, 1)
	settled(t, b.js)
	require.Len(t, notifications(t, b.recv), 1)
	require.Equal(t, alert.StatusFiring, got[0].Status)
}

func TestTwoReplicasSendEachNotificationOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, lagRule)
	cons := b.orders(t, 20)
	// The second replica has its own index and samples a second later.
	dbB, err := store.OpenFile(context.Background(), filepath.Join(t.TempDir(), "jetwatch.db"))
	require.NoError(t, err)
	t.Cleanup(func() { dbB.Close() })
	samplerB, err := collector.NewSampler(b.nc, dbB, collector.SamplerConfig{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	clockB := &clock{now: b.clock.Now().Add(time.Second)}
	a, bb := b.evaluator(t, b.db, b.clock.Now), b.evaluator(t, dbB, clockB.Now)
	b.sender(t, b.db)
	b.sender(t, dbB)
	both := func(d time.Duration) {
		b.evaluate(t, a)
		_, err := samplerB.SampleOnce(context.Background())
		require.NoError(t, err)
		require.NoError(t, bb.Evaluate(context.Background()))
		b.clock.Advance(d)
		clockB.Advance(d)
	}
	both(4 * time.Second)
	both(4 * time.Second)
	both(4 * time.Second) // both have now seen the lag for 8s
	require.Equal(t, alert.StateFiring, state(t, a, "billing-lag"))
	require.Equal(t, alert.StateFiring, state(t, bb, "billing-lag"))
	waitNotifications(t, b.recv, 1)
	settled(t, b.js)

	drain(t, cons)
	both(time.Second)
	both(time.Second)
	waitNotifications(t, b.recv, 2)
	settled(t, b.js)
	got := notifications(t, b.recv)
	require.Len(t, got, 2, "one firing and one resolved, whichever replica saw them")
	require.Equal(t, alert.StatusFiring, got[0].Status)
	require.Equal(t, alert.StatusResolved, got[1].Status)

	// Each replica's delivery log shows both, whichever replica sent them.
	for _, db := range []*store.DB{b.db, dbB} {
		ix := alert.NewDeliveryIndex(b.js, alert.NewDeliveryLog(db), alert.OutboxConfig{}, nil)
		require.NoError(t, ix.Start(context.Background()))
		t.Cleanup(ix.Stop)
		natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			log, err := alert.NewDeliveryLog(db).Recent(context.Background(), 10)
			if err != nil {
				return err
			}
			if len(log) != 2 || log[0].Result != alert.ResultDelivered || log[1].Result != alert.ResultDelivered {
				return fmt.Errorf("delivery log of %s: %+v", db.Path(), log)
			}
			return nil
		})
	}
}

func TestFiringThatResolvedBeforeDeliveryIsNotSentAfterItsResolution(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	cons := b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	// No sender yet: the firing waits in the outbox while the lag clears.
	b.evaluate(t, e)
	drain(t, cons)
	b.clock.Advance(time.Second)
	b.evaluate(t, e)
	b.sender(t, b.db)
	waitNotifications(t, b.recv, 1)
	settled(t, b.js)
	got := notifications(t, b.recv)
	require.Len(t, got, 1)
	require.Equal(t, alert.StatusResolved, got[0].Status)
	log, err := alert.NewDeliveryLog(b.db).Recent(context.Background(), 10)
	require.NoError(t, err)
	results := map[string]string{}
	for _, d := range log {
		results[d.Status] = d.Result
	}
	require.Equal(t, map[string]string{alert.StatusFiring: alert.ResultDropped, alert.StatusResolved: alert.ResultDelivered}, results)
}

func TestRestartedEvaluatorContinuesTheFiringWithoutPagingAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	cons := b.orders(t, 20)
	b.sender(t, b.db)
	first := b.evaluator(t, b.db, b.clock.Now)
	b.evaluate(t, first)
	waitNotifications(t, b.recv, 1)

	// jetwatch restarts: a new evaluator, nothing in memory.
	restarted, err := alert.NewEvaluator(b.js, alert.EvaluatorConfig{Rules: func() *alert.Rules { return b.rules },
		Index: b.db, DeadLetters: query.New(b.db, nil, ""), Now: b.clock.Now})
	require.NoError(t, err)
	b.clock.Advance(time.Minute)
	b.evaluate(t, restarted)
	require.Equal(t, alert.StateFiring, state(t, restarted, "billing-lag"))
	settled(t, b.js)
	require.Len(t, notifications(t, b.recv), 1, "the firing goes on; nobody is paged twice")

	drain(t, cons)
	b.evaluate(t, restarted)
	got := waitNotifications(t, b.recv, 2)
	require.Equal(t, alert.StatusResolved, got[1].Status)
	require.Equal(t, got[0].StartsAt, got[1].StartsAt, "the resolution names the episode that fired before the restart")
}
