package store

import (
	"encoding/json"
	"strings"
	"time"
)

// Health levels, worst last. The overview explains each to the operator.
const (
	HealthOK       = "ok"       // green: nothing to do
	HealthWarning  = "warning"  // amber: look soon (replica behind, limits > 80 %, stalled consumer)
	HealthCritical = "critical" // red: act now (no leader, replica offline, limits >= 95 % with discard new)
	HealthStale    = "stale"    // grey: not sampled recently; numbers may be old
)

// Health is a level and the reasons for it, in the operator's words.
type Health struct {
	Level   string   `json:"level"`
	Reasons []string `json:"reasons,omitempty"`
}

// Raise records a reason and lifts the level to at least level.
func (h *Health) Raise(level, reason string) {
	if HealthRank(level) > HealthRank(h.Level) {
		h.Level = level
	}
	h.Reasons = append(h.Reasons, reason)
}

// A stream's reasons about its consumers start "consumer <name>" (one
// consumer's first reason) or "consumers: " (how many more are unwell);
// its other reasons are about the stream itself.
const (
	ConsumerReasonPrefix  = "consumer "
	ConsumersReasonPrefix = "consumers: "
)

// IsConsumerReason says whether a stream's reason is about its consumers.
func IsConsumerReason(reason string) bool {
	return strings.HasPrefix(reason, ConsumerReasonPrefix) || strings.HasPrefix(reason, ConsumersReasonPrefix)
}

// HealthRank orders health levels, worst highest: 0 ok (and stale or
// unknown), 1 warning, 2 critical. It is also jetwatch_stream_health's value.
func HealthRank(level string) int {
	switch level {
	case HealthWarning:
		return 1
	case HealthCritical:
		return 2
	default:
		return 0
	}
}

// Stream is the latest sampled state of one stream.
type Stream struct {
	Name          string          `json:"name"`
	Description   string          `json:"description,omitempty"`
	Subjects      []string        `json:"subjects"`
	Retention     string          `json:"retention"`
	Storage       string          `json:"storage"`
	Replicas      int             `json:"replicas"`
	Created       time.Time       `json:"created"`
	Messages      uint64          `json:"messages"`
	Bytes         uint64          `json:"bytes"`
	FirstSeq      uint64          `json:"first_seq"`
	LastSeq       uint64          `json:"last_seq"`
	FirstTime     *time.Time      `json:"first_ts,omitempty"`
	LastTime      *time.Time      `json:"last_ts,omitempty"`
	NumDeleted    uint64          `json:"num_deleted"`
	NumSubjects   uint64          `json:"num_subjects"`
	ConsumerCount int             `json:"consumer_count"`
	Limits        StreamLimits    `json:"limits"`
	Cluster       *Cluster        `json:"cluster,omitempty"`
	InPerSec      float64         `json:"in_per_sec"`
	BytesInPerSec float64         `json:"bytes_in_per_sec"`
	Health        Health          `json:"health"`
	SampledAt     time.Time       `json:"sampled_at"`
	Config        json.RawMessage `json:"config,omitempty"`

	// Mirror and Sources are where the stream copies messages from, and
	// how far behind it is.
	Mirror  *StreamSource  `json:"mirror,omitempty"`
	Sources []StreamSource `json:"sources,omitempty"`

	// Own marks one of jetwatch's own streams (JETWATCH_*, its DLQ and
	// advisory streams, KV_jetwatch_*): left out of health lists unless
	// asked for.
	Own bool `json:"own,omitempty"`
	// Unread, when set, says why the last cycle could not read the
	// stream; its numbers are then the last ones read.
	Unread *Unread `json:"unread,omitempty"`
}

// Why a stream or consumer could not be read, in the operator's words.
const (
	// UnreadNoLeader: NATS answered that it has no leader (all its
	// servers offline, or no JetStream meta leader).
	UnreadNoLeader = "no leader"
	// UnreadNoResponse: nobody answered in time; its leader is
	// unreachable or being elected.
	UnreadNoResponse = "no response"
	// UnreadError: NATS answered with another error.
	UnreadError = "error"
)

// Unread is why a stream or consumer the sampler knows of could not be
// read this cycle. It stays listed, red, with its last numbers.
type Unread struct {
	Why    string `json:"why"`
	Detail string `json:"detail"`
	// ReadAt is when its numbers were read; nil when they never were.
	ReadAt *time.Time `json:"read_at,omitempty"`
}

// StreamLimits are the configured limits and how much of each is used.
// A limit of -1 (or 0 for sizes) means unlimited; its used percentage is nil.
type StreamLimits struct {
	MaxMsgs           int64    `json:"max_msgs"`
	MaxBytes          int64    `json:"max_bytes"`
	MaxAgeSeconds     float64  `json:"max_age_seconds"`
	MaxMsgSize        int32    `json:"max_msg_size"`
	MaxMsgsPerSubject int64    `json:"max_msgs_per_subject"`
	MaxConsumers      int      `json:"max_consumers"`
	Discard           string   `json:"discard"`
	MsgsUsedPct       *float64 `json:"msgs_used_pct,omitempty"`
	BytesUsedPct      *float64 `json:"bytes_used_pct,omitempty"`
}

// StreamSource is a stream's mirror or one of its sources, as its
// stream's leader last saw it.
type StreamSource struct {
	Name string `json:"name"`
	// APIPrefix and DeliverPrefix are set for a stream in another account
	// or domain.
	APIPrefix     string `json:"api_prefix,omitempty"`
	DeliverPrefix string `json:"deliver_prefix,omitempty"`
	// Lag is how many messages the copy is behind.
	Lag uint64 `json:"lag"`
	// Active is the time since the origin was last heard from; negative
	// when it never was.
	Active time.Duration `json:"active"`
}

// Cluster is the RAFT group of a replicated stream or consumer.
type Cluster struct {
	Name     string    `json:"name,omitempty"`
	Leader   string    `json:"leader,omitempty"`
	Replicas []Replica `json:"replicas,omitempty"`

	// RaftGroup names the RAFT group; empty on a server without a
	// JetStream cluster.
	RaftGroup string `json:"raft_group,omitempty"`
}

// Replica is one follower of a RAFT group.
type Replica struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	// Offline: the server says so, or the replica is not current and its
	// leader has not heard from it for several heartbeats.
	Offline bool `json:"offline"`
	// ActiveSeconds is the time since the leader last heard from it.
	ActiveSeconds float64 `json:"active_seconds"`
	// Unseen: the leader has not heard from it since its election, and
	// ActiveSeconds counts from the election.
	Unseen bool   `json:"unseen,omitempty"`
	Lag    uint64 `json:"lag"`
}

// Consumer is the latest sampled state of one consumer.
type Consumer struct {
	Stream         string    `json:"stream"`
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	Durable        bool      `json:"durable"`
	Created        time.Time `json:"created"`
	FilterSubjects []string  `json:"filter_subjects,omitempty"`
	DeliverPolicy  string    `json:"deliver_policy"`
	AckPolicy      string    `json:"ack_policy"`
	ReplayPolicy   string    `json:"replay_policy"`
	MaxDeliver     int       `json:"max_deliver"`
	AckWaitSeconds float64   `json:"ack_wait_seconds"`
	BackOffSeconds []float64 `json:"backoff_seconds,omitempty"`
	MaxAckPending  int       `json:"max_ack_pending"`
	Push           bool      `json:"push"`
	// The fields above are the consumer's settings, stored apart from
	// the rest, which every cycle rewrites (see appendConsumerJSON):
	// a field that changes between cycles goes below.
	PushBound       bool         `json:"push_bound,omitempty"`
	NumPending      uint64       `json:"num_pending"`
	NumAckPending   int          `json:"num_ack_pending"`
	NumRedelivered  int          `json:"num_redelivered"`
	NumWaiting      int          `json:"num_waiting"`
	Delivered       SequencePair `json:"delivered"`
	AckFloor        SequencePair `json:"ack_floor"`
	Paused          bool         `json:"paused"`
	PauseUntil      *time.Time   `json:"pause_until,omitempty"`
	DeliveredPerSec float64      `json:"delivered_per_sec"`
	AckedPerSec     float64      `json:"acked_per_sec"`
	Stalled         bool         `json:"stalled"`
	StalledSince    *time.Time   `json:"stalled_since,omitempty"`
	Cluster         *Cluster     `json:"cluster,omitempty"`
	Health          Health       `json:"health"`
	SampledAt       time.Time    `json:"sampled_at"`
	// Config is the server's JSON of the consumer's config. SaveCycle
	// keeps the stored config when it is empty (the sampler leaves it out
	// while it has not changed), and stores {} for a new consumer.
	Config json.RawMessage `json:"config,omitempty"`

	// ServerTime is the server's clock when it answered, to measure the
	// time since the last delivery and ack without clock skew.
	ServerTime time.Time `json:"server_time,omitzero"`

	// Own marks one of jetwatch's own consumers (its readers and durables,
	// and every consumer of its own streams), like Stream.Own.
	Own bool `json:"own,omitempty"`
	// Unread, when set, says why the last cycle could not read the
	// consumer; its numbers are then the last ones read.
	Unread *Unread `json:"unread,omitempty"`

	// LagState is the consumer's lag judged as a trend over a window of
	// samples: one of the Lag* states (see collector's evaluateLag).
	LagState string `json:"lag_state"`
	// ArrivalPerSec is how many messages per second arrive for the
	// consumer, and AckPerSec how many it acknowledges, over the window.
	ArrivalPerSec float64 `json:"arrival_per_second"`
	AckPerSec     float64 `json:"ack_per_second"`
	// DrainSeconds is, while draining, the estimated time until nothing is
	// pending at the present net drain rate; nil otherwise.
	DrainSeconds *float64 `json:"drain_seconds"`
	// LagWindowSeconds is the time the window of samples spans.
	LagWindowSeconds float64 `json:"lag_window_seconds"`
	// DeletedAt is set when the consumer no longer exists on the server:
	// when jetwatch found it gone. It stays listed, stopped, for a while,
	// with its numbers zeroed (nothing of it is pending any more).
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// Lag states of a consumer, from good to bad (paused aside); LagRank
// orders them and is the value of the metric jetwatch_consumer_lag_state.
const (
	LagOK            = "ok"             // keeping up, or nothing to do
	LagDraining      = "draining"       // pending falling: catching up
	LagFallingBehind = "falling_behind" // pending rising: arrivals outpace acks
	LagStalled       = "stalled"        // pending, someone is there, nothing acknowledged
	LagStopped       = "stopped"        // pending and nobody consuming, or deleted
	// LagPaused is a consumer paused on the server until a time: it falls
	// behind on purpose, which is no problem of lag.
	LagPaused = "paused"
)

// LagStates are the lag states in LagRank's order. Paused came last, so
// the values of the others in jetwatch_consumer_lag_state stayed as they
// were; it is not worse than stopped.
var LagStates = []string{LagOK, LagDraining, LagFallingBehind, LagStalled, LagStopped, LagPaused}

// LagRank is a lag state's place in LagStates (0 ok ... 4 stopped, 5
// paused); an unknown or empty state (a row stored before lag was
// judged) ranks 0.
func LagRank(state string) int {
	for i, s := range LagStates {
		if s == state {
			return i
		}
	}
	return 0
}

// SequencePair is a consumer and stream sequence with the last activity.
type SequencePair struct {
	ConsumerSeq uint64     `json:"consumer_seq"`
	StreamSeq   uint64     `json:"stream_seq"`
	LastActive  *time.Time `json:"last_active,omitempty"`
}

// Server is one server's JetStream health from $SYS.REQ.SERVER.PING.JSZ.
type Server struct {
	Name       string    `json:"name"`
	ID         string    `json:"id"`
	Cluster    string    `json:"cluster,omitempty"`
	Version    string    `json:"version,omitempty"`
	Domain     string    `json:"domain,omitempty"`
	MetaLeader string    `json:"meta_leader,omitempty"`
	Memory     uint64    `json:"memory"`
	Storage    uint64    `json:"storage"`
	MaxMemory  int64     `json:"max_memory"`
	MaxStorage int64     `json:"max_storage"`
	Streams    int       `json:"streams"`
	Consumers  int       `json:"consumers"`
	Messages   uint64    `json:"messages"`
	Bytes      uint64    `json:"bytes"`
	APITotal   uint64    `json:"api_total"`
	APIErrors  uint64    `json:"api_errors"`
	Disabled   bool      `json:"disabled,omitempty"`
	Health     Health    `json:"health"`
	SampledAt  time.Time `json:"sampled_at"`

	// Accounts is each account's JetStream use on this server.
	Accounts []ServerAccount `json:"accounts,omitempty"`

	// DownSince is set while the server does not answer: when it last
	// did, or when it was first missed if it never did. Its numbers are
	// then the last ones it gave.
	DownSince *time.Time `json:"down_since,omitempty"`
}

// ServerAccount is one account's JetStream use and reservation on one
// server, from JSZ.
type ServerAccount struct {
	// Name is the account's name tag, or its ID when it has none.
	Name            string `json:"name"`
	ID              string `json:"id"`
	Memory          uint64 `json:"memory"`
	Storage         uint64 `json:"storage"`
	ReservedMemory  uint64 `json:"reserved_memory"`
	ReservedStorage uint64 `json:"reserved_storage"`
}

// Cycle is everything one sampling cycle saw.
type Cycle struct {
	At        time.Time
	Streams   []Stream
	Consumers []Consumer
	// StreamsComplete is true when every stream known is in Streams (read
	// or Unread) or was found deleted, so streams not in it are gone.
	StreamsComplete bool
	// ConsumersComplete names the streams whose consumers were all
	// accounted for likewise, so their consumers not in it are gone.
	ConsumersComplete map[string]bool
	// Servers is nil when JSZ was not available this cycle; the previous
	// server rows are then kept. Otherwise it replaces them, servers that
	// stopped answering included (with DownSince).
	Servers []Server
}

// StreamPoint is one point of a stream's history.
type StreamPoint struct {
	At       time.Time `json:"at"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	LastSeq  uint64    `json:"last_seq"`
}

// ConsumerPoint is one point of a consumer's history. Values are the maximum
// seen in the point's bucket, so a short spike of lag is never averaged away;
// At is the time of the bucket's last sample, so rates between points divide
// by the real time between samples.
type ConsumerPoint struct {
	At             time.Time `json:"at"`
	NumPending     uint64    `json:"num_pending"`
	NumAckPending  uint64    `json:"num_ack_pending"`
	NumRedelivered uint64    `json:"num_redelivered"`
	NumWaiting     uint64    `json:"num_waiting"`
	DeliveredSeq   uint64    `json:"delivered_seq"`
	AckFloorSeq    uint64    `json:"ack_floor_seq"`
}

// SamplerState is what the sampler reports about its last cycle: the
// collector writes it, the pages and /readyz read it.
type SamplerState struct {
	FirstCycleDone bool
	LastCycleAt    time.Time
	LastDuration   time.Duration
	// LastSaveDuration is the part of LastDuration spent storing the
	// cycle in the index.
	LastSaveDuration time.Duration
	Streams          int
	Consumers        int
	// Errors are the problems of the last cycle, in the operator's words:
	// what could not be read and why, a bounded number of them.
	Errors []string
	// JSZ is empty while per-server health via $SYS is available, else why not.
	JSZ string
	// Account is jetwatch's own account's name, as the server told it;
	// empty until known.
	Account string
	// AllAccounts says whether every other account is sampled too.
	AllAccounts bool
	// Accounts are the other accounts' streams and consumers, read
	// through the system account when every account is sampled, sorted
	// by name; nil when not. Read-only: each cycle replaces the slice.
	Accounts []Account
	// AccountsNote says why other accounts are not shown, when they are
	// asked for and cannot be read.
	AccountsNote string
}

// Account is another account's streams and consumers as the servers'
// JSZ reported them in the last cycle, judged with the same rules as
// jetwatch's own account. Kept in memory only: their history is in
// Prometheus, through the exporter-compatible series.
type Account struct {
	// Name is the account's name tag, or its ID when it has none.
	Name string `json:"name"`
	ID   string `json:"id"`
	// Memory and Storage are the account's JetStream use, all servers.
	Memory    uint64     `json:"memory"`
	Storage   uint64     `json:"storage"`
	Streams   []Stream   `json:"streams"`
	Consumers []Consumer `json:"consumers"`
	Health    Health     `json:"health"`
	SampledAt time.Time  `json:"sampled_at"`
	// Unread says why the account could not be read this cycle; Problem,
	// what a server answered wrong while the others were read.
	Unread  *Unread `json:"unread,omitempty"`
	Problem string  `json:"problem,omitempty"`
}
