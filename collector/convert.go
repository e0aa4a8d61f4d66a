package collector

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/store"
)

// streamFromInfo turns the server's stream info into the index's shape,
// without rates and health, which need history and consumers.
func streamFromInfo(info *jetstream.StreamInfo, at time.Time) store.Stream {
	cfg := info.Config
	st := info.State
	s := store.Stream{
		Name:          cfg.Name,
		Description:   cfg.Description,
		Subjects:      cfg.Subjects,
		Retention:     retentionName(cfg.Retention),
		Storage:       strings.ToLower(cfg.Storage.String()),
		Replicas:      cfg.Replicas,
		Created:       info.Created.UTC(),
		Messages:      st.Msgs,
		Bytes:         st.Bytes,
		FirstSeq:      st.FirstSeq,
		LastSeq:       st.LastSeq,
		FirstTime:     nonZeroTime(st.FirstTime),
		LastTime:      nonZeroTime(st.LastTime),
		NumDeleted:    uint64(st.NumDeleted),
		NumSubjects:   st.NumSubjects,
		ConsumerCount: st.Consumers,
		Limits: store.StreamLimits{
			MaxMsgs:           cfg.MaxMsgs,
			MaxBytes:          cfg.MaxBytes,
			MaxAgeSeconds:     cfg.MaxAge.Seconds(),
			MaxMsgSize:        cfg.MaxMsgSize,
			MaxMsgsPerSubject: cfg.MaxMsgsPerSubject,
			MaxConsumers:      cfg.MaxConsumers,
			Discard:           discardName(cfg.Discard),
		},
		Cluster:   clusterFromInfo(info.Cluster, at),
		Health:    store.Health{Level: store.HealthOK},
		SampledAt: at,
	}
	if cfg.MaxMsgs > 0 {
		s.Limits.MsgsUsedPct = ptr(percent(st.Msgs, uint64(cfg.MaxMsgs)))
	}
	if cfg.MaxBytes > 0 {
		s.Limits.BytesUsedPct = ptr(percent(st.Bytes, uint64(cfg.MaxBytes)))
	}
	if info.Mirror != nil {
		s.Mirror = ptr(sourceFromInfo(info.Mirror))
	}
	for _, src := range info.Sources {
		if src != nil {
			s.Sources = append(s.Sources, sourceFromInfo(src))
		}
	}
	if raw, err := json.Marshal(cfg); err == nil {
		s.Config = raw
	}
	return s
}

func sourceFromInfo(si *jetstream.StreamSourceInfo) store.StreamSource {
	src := store.StreamSource{Name: si.Name, Lag: si.Lag, Active: si.Active}
	if si.External != nil {
		src.APIPrefix, src.DeliverPrefix = si.External.APIPrefix, si.External.DeliverPrefix
	}
	return src
}

func consumerFromInfo(info *consumerInfo, at time.Time) store.Consumer {
	cfg := info.Config
	c := store.Consumer{
		Stream:         info.Stream,
		Name:           info.Name,
		Description:    cfg.Description,
		Durable:        cfg.durable || cfg.Durable != "",
		Created:        info.Created.UTC(),
		FilterSubjects: cfg.FilterSubjects,
		DeliverPolicy:  cfg.DeliverPolicy.String(),
		AckPolicy:      ackPolicyName(cfg.AckPolicy),
		ReplayPolicy:   cfg.ReplayPolicy.String(),
		MaxDeliver:     cfg.MaxDeliver,
		AckWaitSeconds: cfg.AckWait.Seconds(),
		MaxAckPending:  cfg.MaxAckPending,
		Push:           cfg.DeliverSubject != "",
		PushBound:      info.PushBound,
		NumPending:     info.NumPending,
		NumAckPending:  info.NumAckPending,
		NumRedelivered: info.NumRedelivered,
		NumWaiting:     info.NumWaiting,
		Delivered:      sequencePair(info.Delivered),
		AckFloor:       sequencePair(info.AckFloor),
		Paused:         info.Paused,
		Cluster:        clusterFromInfo(info.Cluster, at),
		Health:         store.Health{Level: store.HealthOK},
		SampledAt:      at,
		ServerTime:     info.TimeStamp.UTC(),
	}
	if cfg.FilterSubject != "" {
		c.FilterSubjects = append([]string{cfg.FilterSubject}, c.FilterSubjects...)
	}
	for _, b := range cfg.BackOff {
		c.BackOffSeconds = append(c.BackOffSeconds, b.Seconds())
	}
	// The config's pause_until is the server's own time; pause_remaining
	// from the sample time is the estimate when a server leaves it out.
	switch {
	case info.Paused && cfg.PauseUntil != nil:
		c.PauseUntil = ptr(cfg.PauseUntil.UTC())
	case info.Paused && info.PauseRemaining > 0:
		c.PauseUntil = ptr(at.Add(info.PauseRemaining).UTC())
	}
	c.Config = cfg.Raw
	return c
}

// replicaLostAfter is how long a replica that is not current may go
// unheard before it counts as offline: RAFT leaders hear from their
// followers every second, so this is five missed heartbeats.
const replicaLostAfter = 5 * time.Second

func clusterFromInfo(ci *jetstream.ClusterInfo, at time.Time) *store.Cluster {
	if ci == nil {
		return nil
	}
	c := &store.Cluster{Name: ci.Name, Leader: ci.Leader, RaftGroup: ci.RaftGroup}
	for _, p := range ci.Replicas {
		if p == nil {
			continue
		}
		r := store.Replica{Name: p.Name, Current: p.Current, Offline: p.Offline, ActiveSeconds: p.Active.Seconds(), Lag: p.Lag}
		// A leader elected after a server died never heard from it: it
		// reports it not current, seen "0s" ago and 0 behind. Count from
		// the election instead.
		if p.Active == 0 && !p.Current && ci.LeaderSince != nil {
			r.Unseen, r.ActiveSeconds = true, max(at.Sub(*ci.LeaderSince), 0).Seconds()
		}
		// The server flags a replica offline only once it has given up on
		// its server (minutes after a crash): not current and not heard
		// from for several heartbeats is offline for the operator.
		if !r.Current && r.ActiveSeconds >= replicaLostAfter.Seconds() {
			r.Offline = true
		}
		c.Replicas = append(c.Replicas, r)
	}
	return c
}

func sequencePair(s jetstream.SequenceInfo) store.SequencePair {
	p := store.SequencePair{ConsumerSeq: s.Consumer, StreamSeq: s.Stream}
	if s.Last != nil && !s.Last.IsZero() {
		p.LastActive = ptr(s.Last.UTC())
	}
	return p
}

func retentionName(r jetstream.RetentionPolicy) string {
	switch r {
	case jetstream.LimitsPolicy:
		return "limits"
	case jetstream.InterestPolicy:
		return "interest"
	case jetstream.WorkQueuePolicy:
		return "workqueue"
	}
	return fmt.Sprintf("unknown(%d)", int(r))
}

func discardName(d jetstream.DiscardPolicy) string {
	if d == jetstream.DiscardNew {
		return "new"
	}
	return "old"
}

func ackPolicyName(a jetstream.AckPolicy) string {
	switch a {
	case jetstream.AckNonePolicy:
		return "none"
	case jetstream.AckAllPolicy:
		return "all"
	case jetstream.AckExplicitPolicy:
		return "explicit"
	}
	return strings.ToLower(strings.TrimPrefix(a.String(), "Ack"))
}

func percent(used, limit uint64) float64 {
	if limit == 0 {
		return 0
	}
	return float64(used) * 100 / float64(limit)
}

func nonZeroTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return ptr(t.UTC())
}

func ptr[T any](v T) *T { return &v }
