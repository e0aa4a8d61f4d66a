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
