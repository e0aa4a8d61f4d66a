package collector

import (
	"fmt"
	"time"

	"github.com/jetwatch/jetwatch/internal/human"
	"github.com/jetwatch/jetwatch/store"
)

// judgeConsumer sets a consumer's health, and its stalled flag, from its
// judged lag (see evaluateLag), the breakers of the services behind it
// that are not closed, and what JetStream says of it. The one judgement
// every page, the API, the metrics and the alerts show:
//   - stalled, or stopped with nobody consuming: critical, and stalled;
//   - falling behind: warning;
//   - paused: warning, "paused until <time>": on purpose, not stalled
//     or falling behind, whatever its pending does;
//   - deleted: warning (gone);
//   - a breaker open or half-open: at least a warning, whatever the lag:
//     the service pauses consumption while it is open;
//   - ack pending at its limit, a push consumer without a subscriber:
//     warning;
//   - draining and ok add nothing.
func judgeConsumer(c *store.Consumer, lag lagResult, guards []store.Breaker, now time.Time) {
	h := store.Health{Level: store.HealthOK}
	c.Stalled, c.StalledSince = false, nil
	switch lag.State {
	case store.LagStopped:
		switch {
		case c.DeletedAt != nil:
			h.Raise(store.HealthWarning, fmt.Sprintf("deleted: no longer on the server since %s ago; listed as stopped for a while",
				human.Duration(now.Sub(*c.DeletedAt))))
		default:
			c.Stalled, c.StalledSince = true, lag.IdleSince
			h.Raise(store.HealthCritical, lag.Why)
		}
	case store.LagStalled:
		c.Stalled, c.StalledSince = true, lag.IdleSince
		h.Raise(store.HealthCritical, lag.Why)
	case store.LagFallingBehind:
		h.Raise(store.HealthWarning, lag.Why)
	case store.LagPaused:
		reason := "paused"
		if c.PauseUntil != nil {
			reason = "paused until " + c.PauseUntil.Format(time.RFC3339)
		}
		h.Raise(store.HealthWarning, reason+": the server delivers nothing to it until then, so its pending grows")
	}
	for _, b := range guards {
		h.Raise(store.HealthWarning, fmt.Sprintf("breaker %s of service %s is %s since %s ago: the service pauses consumption while it is open",
			b.Breaker, b.Service, b.State, human.Duration(now.Sub(b.Since))))
	}
	if c.MaxAckPending > 0 && c.NumAckPending >= c.MaxAckPending {
		h.Raise(store.HealthWarning, fmt.Sprintf("ack pending at its limit (%d): no new deliveries until acks arrive", c.MaxAckPending))
	}
	if c.Push && !c.PushBound && c.NumPending > 0 && lag.State != store.LagStopped && lag.State != store.LagPaused {
		h.Raise(store.HealthWarning, "push consumer has no active subscriber")
	}
	judgeCluster(&h, c.Cluster)
	c.Health = h
}

// judgeStream sets a stream's health from its replicas, limits and the
// consumers already judged: its worst consumer, with the consumer's first
// reason. jetwatch's own consumers (its readers, which a crash or restart
// may leave behind for a while) never make a stream look unwell.
func judgeStream(s *store.Stream, consumers []store.Consumer) {
	h := store.Health{Level: store.HealthOK}
	if s.Replicas > 1 || (s.Cluster != nil && len(s.Cluster.Replicas) > 0) {
		judgeCluster(&h, s.Cluster)
	}
	judgeLimit(&h, "messages", s.Limits.MsgsUsedPct, s.Limits.Discard)
	judgeLimit(&h, "bytes", s.Limits.BytesUsedPct, s.Limits.Discard)
	for i := range consumers {
		c := &consumers[i]
		switch {
		case c.Own:
		case c.Unread != nil:
			h.Raise(store.HealthWarning, "consumer "+c.Name+" could not be read ("+c.Unread.Why+")")
		case c.Health.Level != store.HealthOK && len(c.Health.Reasons) > 0:
			h.Raise(c.Health.Level, "consumer "+c.Name+": "+c.Health.Reasons[0])
		}
	}
	s.Health = h
}

func judgeCluster(h *store.Health, c *store.Cluster) {
	if c == nil {
		return
	}
	if c.Leader == "" {
		h.Raise(store.HealthCritical, "no leader: reads and writes fail until one is elected")
	}
	for _, r := range c.Replicas {
		switch {
		case r.Offline:
			h.Raise(store.HealthCritical, "replica "+r.Name+" is offline: "+replicaLastSeen(r))
		case !r.Current && r.Lag == 0:
			h.Raise(store.HealthWarning, "replica "+r.Name+" is catching up: "+replicaLastSeen(r))
		case !r.Current:
			h.Raise(store.HealthWarning, fmt.Sprintf("replica %s is %d operations behind", r.Name, r.Lag))
		}
	}
}

// replicaLastSeen says when a replica's leader last heard from it.
func replicaLastSeen(r store.Replica) string {
	ago := human.Duration(time.Duration(r.ActiveSeconds * float64(time.Second)))
	if r.Unseen {
		return fmt.Sprintf("not seen since its leader was elected %s ago", ago)
	}
	return fmt.Sprintf("last seen %s ago", ago)
}

func judgeLimit(h *store.Health, what string, used *float64, discard string) {
	if used == nil {
		return
	}
	u := *used
	switch {
	case discard == "new" && u >= 95:
		h.Raise(store.HealthCritical, fmt.Sprintf("%.0f%% of max %s with discard new: publishes are about to be rejected", u, what))
	case discard == "new" && u >= 80:
		h.Raise(store.HealthWarning, fmt.Sprintf("%.0f%% of max %s with discard new", u, what))
	case u >= 95:
		h.Raise(store.HealthWarning, fmt.Sprintf("%.0f%% of max %s: the oldest messages are being discarded", u, what))
	}
}
