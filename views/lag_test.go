package views

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

func TestConsumerPageShowsTheLagTrend(t *testing.T) {
	t.Parallel()
	drain := 310.0
	deleted := testNow.Add(-2 * time.Minute)
	for _, tc := range []struct {
		name                      string
		c                         store.Consumer
		state, label, level, want string
		arrival, ack, drain       string
	}{{
		name:  "falling behind",
		c:     store.Consumer{LagState: store.LagFallingBehind, ArrivalPerSec: 20, AckPerSec: 12, LagWindowSeconds: 90},
		state: "falling_behind", label: "falling behind", level: store.HealthWarning, want: "over the last 1m 30s of samples",
		arrival: "20/s", ack: "12/s",
	}, {
		name:  "draining",
		c:     store.Consumer{LagState: store.LagDraining, ArrivalPerSec: 20, AckPerSec: 30, DrainSeconds: &drain, LagWindowSeconds: 90},
		state: "draining", label: "draining", level: store.HealthOK, want: "catching up",
		arrival: "20/s", ack: "30/s", drain: "about 5m 10s",
	}, {
		name:  "stopped by nobody",
		c:     store.Consumer{LagState: store.LagStopped},
		state: "stopped", label: "stopped", level: store.HealthCritical, want: "nobody is consuming",
		arrival: "0/s", ack: "0/s",
	}, {
		name:  "deleted",
		c:     store.Consumer{LagState: store.LagStopped, DeletedAt: &deleted},
		state: "stopped", label: "stopped", level: store.HealthWarning, want: "or deleted",
		arrival: "0/s", ack: "0/s",
	}, {
		name:  "stored before lag was judged",
		c:     store.Consumer{},
		state: "", label: "not judged", level: store.HealthOK, want: "not judged yet",
		arrival: "0/s", ack: "0/s",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.c.Stream, tc.c.Name, tc.c.SampledAt = "ORDERS", "shipping", testNow
			doc := render(t, ConsumerLive(ConsumerPage{Page: testPage(), Consumer: ConsumerRow{Consumer: tc.c}}))
			badge := byTestID(byTestID(doc, "consumer-lag")[0], "lag-state")
			require.Len(t, badge, 1)
			require.Equal(t, tc.state, attr(badge[0], "data-state"))
			require.Equal(t, tc.label, text(badge[0]))
			require.Equal(t, "badge "+tc.level, attr(badge[0], "class"))
			require.Contains(t, text(byTestID(doc, "lag-meaning")[0]), tc.want)
			require.Equal(t, tc.arrival, text(byTestID(doc, "lag-arrival")[0]))
			require.Equal(t, tc.ack, text(byTestID(doc, "lag-ack")[0]))
			if tc.drain == "" {
				require.Empty(t, byTestID(doc, "lag-drain"))
			} else {
				require.Equal(t, tc.drain, text(byTestID(doc, "lag-drain")[0]))
			}
			require.Equal(t, tc.c.DeletedAt != nil, len(byTestID(doc, "lag-deleted")) == 1)
		})
	}
}
