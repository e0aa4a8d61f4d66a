package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// toAlertmanagerAPI turns the bundle's receiver "ops" into an
// alertmanager-api receiver whose base URL is base.
func (b *testBundle) toAlertmanagerAPI(base string) {
	b.rules.Receivers[0].Format = alert.FormatAlertmanagerAPI
	b.rules.Receivers[0].URL = base
	b.rules.Receivers[0].ResendEvery = alert.Duration(time.Minute)
}

// deliveredAs waits until the delivery log holds one entry with result
// after attempts attempts, and returns it.
func (b *testBundle) deliveredAs(t *testing.T, result string, attempts int) alert.Delivery {
	t.Helper()
	var got alert.Delivery
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		log, err := alert.NewDeliveryLog(b.db).Recent(context.Background(), 10)
		if err != nil {
			return err
		}
		if len(log) != 1 || log[0].Result != result || log[0].Attempts != attempts {
			return fmt.Errorf("delivery log %+v, want one %s after %d attempts", log, result, attempts)
		}
		got = log[0]
		return nil
	})
	return got
}

func TestAlertmanagerAPIPostsToAlertsBelowTheBaseURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"", "/", "/am", "/am/"} {
		t.Run("base "+base, func(t *testing.T) {
			t.Parallel()
			b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
			b.toAlertmanagerAPI(b.recv.URL + base)
			b.orders(t, 20)
			e := b.evaluator(t, b.db, b.clock.Now)
			b.sender(t, b.db)
			b.evaluate(t, e)
			waitRequests(t, b.recv, 1)
			req := b.recv.delivered()[0]
			require.Equal(t, strings.TrimSuffix(base, "/")+"/api/v2/alerts", req.path)
			require.Equal(t, "application/json", req.header.Get("Content-Type"))
			var alerts []struct{ Labels map[string]string }
			require.NoError(t, json.Unmarshal(req.body, &alerts))
			require.Len(t, alerts, 1)
			require.Equal(t, "billing-lag", alerts[0].Labels["alertname"])
		})
	}
}

// waitRequests waits until the receiver accepted n requests, whatever
// their body.
func waitRequests(t *testing.T, r *receiver, n int) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got := len(r.delivered()); got < n {
			return fmt.Errorf("receiver accepted %d requests, want %d", got, n)
		}
		return nil
	})
}

func TestAlertmanagerAPIRefusalIsNotRetriedButTooManyRequestsIs(t *testing.T) {
	t.Parallel()
	t.Run("400 fails at once", func(t *testing.T) {
		t.Parallel()
		b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1), http.StatusBadRequest)
		b.toAlertmanagerAPI(b.recv.URL)
		b.orders(t, 20)
		e := b.evaluator(t, b.db, b.clock.Now)
		b.sender(t, b.db)
		b.evaluate(t, e)
		d := b.deliveredAs(t, alert.ResultFailed, 1)
		require.Equal(t, http.StatusBadRequest, d.HTTPStatus)
		settled(t, b.js)
		require.Equal(t, 1, b.recv.attempts(), "the same body would be refused again")
	})
	t.Run("429 and 503 are retried", func(t *testing.T) {
		t.Parallel()
		b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1), http.StatusTooManyRequests, http.StatusServiceUnavailable)
		b.toAlertmanagerAPI(b.recv.URL)
		b.orders(t, 20)
		e := b.evaluator(t, b.db, b.clock.Now)
		b.sender(t, b.db)
		b.evaluate(t, e)
		b.deliveredAs(t, alert.ResultDelivered, 3)
		settled(t, b.js)
		require.Equal(t, 3, b.recv.attempts())
	})
}

// requestBodies decodes the alerts of every request r accepted.
func requestBodies(t *testing.T, r *receiver) [][]struct {
	Labels   map[string]string
	StartsAt time.Time
	EndsAt   *time.Time
} {
	t.Helper()
	var out [][]struct {
		Labels   map[string]string
		StartsAt time.Time
		EndsAt   *time.Time
	}
	for _, req := range r.delivered() {
		var alerts []struct {
			Labels   map[string]string
			StartsAt time.Time
			EndsAt   *time.Time
		}
		require.NoError(t, json.Unmarshal(req.body, &alerts))
		out = append(out, alerts)
	}
	return out
}

func TestAlertmanagerAPIFiringIsResentEveryResendEvery(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	b.toAlertmanagerAPI(b.recv.URL)
	b.rules.Receivers[0].ResendEvery = alert.Duration(30 * time.Second)
	cons := b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	b.evaluate(t, e)
	waitRequests(t, b.recv, 1)

	b.clock.Advance(20 * time.Second)
	b.evaluate(t, e)
	settled(t, b.js)
	require.Len(t, b.recv.delivered(), 1, "not due before resend_every")

	// Acknowledged, it still goes on to Alertmanager: a stop would look
	// like a resolution there after its resolve_timeout.
	statuses, _ := e.Statuses()
	require.NoError(t, e.Acknowledge(context.Background(), statuses[0].Instances[0].Fingerprint, "alice", "on it"))
	b.clock.Advance(15 * time.Second)
	b.evaluate(t, e)
	waitRequests(t, b.recv, 2)
	b.clock.Advance(30 * time.Second)
	b.evaluate(t, e)
	waitRequests(t, b.recv, 3)
	settled(t, b.js)
	got := requestBodies(t, b.recv)
	require.Len(t, got, 3, "one firing, then one re-send per resend_every")
	for _, alerts := range got {
		require.Len(t, alerts, 1)
		require.Equal(t, got[0][0].Labels, alerts[0].Labels)
		require.Equal(t, got[0][0].StartsAt, alerts[0].StartsAt, "the same alert, not a new one")
		require.Nil(t, alerts[0].EndsAt)
	}

	drain(t, cons)
	b.evaluate(t, e)
	waitRequests(t, b.recv, 4)
	b.clock.Advance(time.Minute)
	b.evaluate(t, e)
	settled(t, b.js)
	got = requestBodies(t, b.recv)
	require.Len(t, got, 4, "resolved: no more re-sends")
	require.NotNil(t, got[3][0].EndsAt)
}

func TestAlertmanagerAPIFiringSilencedIsNeverSentNorResent(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	b.toAlertmanagerAPI(b.recv.URL)
	b.rules.Receivers[0].ResendEvery = alert.Duration(30 * time.Second)
	b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	_, err := e.Silence(context.Background(), alert.SilenceRequest{Rule: "billing-lag", For: time.Hour, By: "ann", Why: "maintenance"})
	require.NoError(t, err)
	for range 3 {
		b.evaluate(t, e)
		b.clock.Advance(31 * time.Second)
	}
	require.Equal(t, alert.StateFiring, state(t, e, "billing-lag"))
	settled(t, b.js)
	require.Zero(t, b.recv.attempts(), "Alertmanager never heard of it, so there is nothing to keep alive")
}
