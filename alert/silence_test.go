package alert_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
)

func TestRepeatUntilAcknowledgedAndSilenceMutes(t *testing.T) {
	t.Parallel()
	rules := strings.Replace(lagRule, "for: 5s", "for: 0s\n    repeat: 1m", 1) +
		"  - {name: silenced-lag, kind: consumer_lag, stream: ORDERS, above: 10, receivers: [ops]}\n"
	b := setup(t, rules)
	b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	ctx := context.Background()

	s, err := e.Silence(ctx, alert.SilenceRequest{Rule: "silenced-lag", For: time.Hour, By: "ann", Why: "maintenance of billing"})
	require.NoError(t, err)
	_, err = e.Silence(ctx, alert.SilenceRequest{Rule: "silenced-lag", For: time.Hour, By: "ann"})
	require.ErrorIs(t, err, alert.ErrBadRequest, "a silence says why")
	_, err = e.Silence(ctx, alert.SilenceRequest{Rule: "nope", For: time.Hour, By: "ann", Why: "x"})
	require.ErrorIs(t, err, alert.ErrUnknownAlert)

	b.evaluate(t, e)
	require.Equal(t, alert.StateFiring, state(t, e, "silenced-lag"), "a silenced rule still shows its state")
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, "billing-lag", got[0].Rule)

	b.clock.Advance(61 * time.Second)
	b.evaluate(t, e)
	got = waitNotifications(t, b.recv, 2)
	require.Equal(t, 1, got[1].Repeat, "a reminder after the repeat interval")
	require.NotEqual(t, got[0].ID, got[1].ID)

	require.NoError(t, e.Acknowledge(ctx, got[0].Fingerprint, "bob", "looking at it"))
	require.ErrorIs(t, e.Acknowledge(ctx, "0000000000000000", "bob", ""), alert.ErrUnknownAlert)
	require.ErrorIs(t, e.Acknowledge(ctx, strings.Repeat("f", 5000), "bob", ""), alert.ErrUnknownAlert, "never reaches the connection")
	require.ErrorIs(t, e.Acknowledge(ctx, "a b", "bob", ""), alert.ErrUnknownAlert)
	b.clock.Advance(61 * time.Second)
	b.evaluate(t, e)
	statuses, _ := e.Statuses()
	require.Equal(t, "bob", statuses[0].Instances[0].AckedBy)
	require.Equal(t, s.ID, statuses[1].Instances[0].Silence.ID)
	settled(t, b.js)
	for _, n := range notifications(t, b.recv) {
		require.NotEqual(t, "silenced-lag", n.Rule, "a silenced rule sends nothing")
	}
	require.Len(t, notifications(t, b.recv), 2, "no reminder once acknowledged")

	silences, err := e.Silences(ctx)
	require.NoError(t, err)
	require.Len(t, silences, 1)
	require.Equal(t, "ann", silences[0].By)
}

func TestAlertFiringThroughASilencePagesWhenItEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	b.sender(t, b.db)
	_, err := e.Silence(context.Background(), alert.SilenceRequest{Rule: "billing-lag", For: time.Minute, By: "ann", Why: "deploy"})
	require.NoError(t, err)
	b.evaluate(t, e)
	require.Equal(t, alert.StateFiring, state(t, e, "billing-lag"))
	settled(t, b.js)
	require.Empty(t, notifications(t, b.recv), "silenced")
	b.clock.Advance(2 * time.Minute)
	b.evaluate(t, e)
	got := waitNotifications(t, b.recv, 1)
	require.Equal(t, alert.StatusFiring, got[0].Status, "still firing when the silence ended: page now")
}
