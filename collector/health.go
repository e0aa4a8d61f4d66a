package collector

import (
	"fmt"
	"strings"
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

// streamConsumerReasons is how many of its unwell consumers a stream's
// health names, worst first; the rest are counted in one more reason.
// A stream with 100,000 stopped ephemeral consumers would otherwise carry
// 100,000 reasons, in every cycle's memory and row, on its page and in
// every alert about it: the consumers' own rows say the rest.
const streamConsumerReasons = 3

// judgeStream sets a stream's health from its replicas, limits and the
// consumers already judged: its worst consumer, with the first reasons of
// its worst consumers (streamConsumerReasons of them, the others counted).
// jetwatch's own consumers (its readers, which a crash or restart may
// leave behind for a while) never make a stream look unwell.
func judgeStream(s *store.Stream, consumers []store.Consumer) {
	h := store.Health{Level: store.HealthOK}
	if s.Replicas > 1 || (s.Cluster != nil && len(s.Cluster.Replicas) > 0) {
		judgeCluster(&h, s.Cluster)
	}
	judgeLimit(&h, "messages", s.Limits.MsgsUsedPct, s.Limits.Discard)
	judgeLimit(&h, "bytes", s.Limits.BytesUsedPct, s.Limits.Discard)
	// The worst streamConsumerReasons unwell consumers, in the order they
	// come (by name) within a level: found in one pass, as the consumers
	// are many and the kept few.
	var named [streamConsumerReasons]int
	nNamed, unwell, critical, unread := 0, 0, 0, 0
	for i := range consumers {
		level := consumerLevel(&consumers[i])
		if level == "" {
			continue
		}
		unwell++
		if level == store.HealthCritical {
			critical++
		}
		if consumers[i].Unread != nil {
			unread++
		}
		// Insert after every kept one at least as bad: a worse one goes
		// before better ones, the last kept drops off when full.
		rank := store.HealthRank(level)
		at := nNamed
		for at > 0 && store.HealthRank(consumerLevel(&consumers[named[at-1]])) < rank {
			at--
		}
		if at == streamConsumerReasons {
			continue
		}
		copy(named[at+1:min(nNamed+1, streamConsumerReasons)], named[at:])
		named[at] = i
		nNamed = min(nNamed+1, streamConsumerReasons)
	}
	for _, i := range named[:nNamed] {
		c := &consumers[i]
		if c.Unread != nil {
			h.Raise(store.HealthWarning, store.ConsumerReasonPrefix+c.Name+" could not be read ("+c.Unread.Why+")")
		} else {
			h.Raise(c.Health.Level, store.ConsumerReasonPrefix+c.Name+": "+c.Health.Reasons[0])
		}
		if consumerLevel(c) == store.HealthCritical {
			critical--
		}
		if c.Unread != nil {
			unread--
		}
	}
	if more := unwell - nNamed; more > 0 {
		level := store.HealthWarning
		if critical > 0 {
			level = store.HealthCritical
		}
		h.Raise(level, moreUnwellConsumers(more-unread, critical, unread))
	}
	s.Health = h
}

// moreUnwellConsumers counts the consumers not named: unwell ones,
// critical of them critical and the others warnings, and unread ones,
// which are not known to be unwell (only not to have answered).
func moreUnwellConsumers(more, critical, unread int) string {
	var parts []string
	if more > 0 {
		var levels string
		switch critical {
		case 0:
			levels = "all warning"
		case more:
			levels = "all critical"
		default:
			levels = fmt.Sprintf("%d critical, %d warning", critical, more-critical)
		}
		if more == 1 {
			parts = append(parts, "1 more is unwell ("+strings.TrimPrefix(levels, "all ")+")")
		} else {
			parts = append(parts, fmt.Sprintf("%d more are unwell (%s)", more, levels))
		}
	}
	switch {
	case unread == 0:
	case more > 0:
		parts = append(parts, fmt.Sprintf("%d could not be read", unread))
	case unread == 1:
		parts = append(parts, "1 more could not be read")
	default:
		parts = append(parts, fmt.Sprintf("%d more could not be read", unread))
	}
	return store.ConsumersReasonPrefix + strings.Join(parts, "; ") + ": see the stream's consumers"
}

// consumerLevel is the level at which a consumer makes its stream
// unwell, "" when it does not: jetwatch's own never, one that could not
// be read a warning, else its own health when it has a reason.
func consumerLevel(c *store.Consumer) string {
	switch {
	case c.Own:
		return ""
	case c.Unread != nil:
		return store.HealthWarning
	case c.Health.Level != store.HealthOK && len(c.Health.Reasons) > 0:
		return c.Health.Level
	}
	return ""
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
