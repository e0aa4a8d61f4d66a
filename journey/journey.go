package journey

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// Step kinds of a journey.
const (
	StepMessage    = "message"
	StepDeadLetter = "dead_letter"
	StepAction     = "action" // a redelivery or a discard
	StepBreaker    = "breaker"
)

// maxSteps bounds each kind of step read for one journey: one business
// event with more is a loop, and the first ones say so.
const maxSteps = 1000

// Step is one thing that happened on a journey.
type Step struct {
	At   time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Stream, Subject and Seq place a message; for a dead letter, its
	// origin; for a redelivery, where it went.
	Stream  string `json:"stream,omitempty"`
	Subject string `json:"subject,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Size    int    `json:"size,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	// MatchedBy names the keys of a message that matched.
	MatchedBy  []string `json:"matched_by,omitempty"`
	Consumer   string   `json:"consumer,omitempty"`
	Service    string   `json:"service,omitempty"`
	DeadLetter uint64   `json:"dead_letter,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Error      string   `json:"error,omitempty"`
	Status     string   `json:"status,omitempty"`
	Action     string   `json:"action,omitempty"`
	Actor      string   `json:"actor,omitempty"`
	Breaker    string   `json:"breaker,omitempty"`
	From       string   `json:"from,omitempty"`
	To         string   `json:"to,omitempty"`
}

// Journey is everything indexed under one key, in time order.
type Journey struct {
	Key   string `json:"key"`
	Steps []Step `json:"steps"`
	// TraceIDs are the trace ids the journey's messages carry.
	TraceIDs []string `json:"trace_ids"`
	// Streams the journey passed through.
	Streams []string `json:"streams"`
	// Truncated says a kind of step had more than could be shown.
	Truncated bool `json:"truncated,omitempty"`
}

// Reader reads journeys from the index.
type Reader struct {
	db *store.DB
}

// NewReader returns a reader of db's journeys.
func NewReader(db *store.DB) *Reader { return &Reader{db: db} }

// Journey gathers the messages, dead letters, their redeliveries and
// discards carrying key, and the changes of the breakers bound to the
// streams it passed through within its time span.
func (r *Reader) Journey(ctx context.Context, key string) (Journey, error) {
	j := Journey{Key: key, Steps: []Step{}, TraceIDs: []string{}, Streams: []string{}}
	msgs, err := r.db.JourneyMessages(ctx, key, maxSteps)
	if err != nil {
		return Journey{}, err
	}
	letters, actions, err := r.db.JourneyDeadLetters(ctx, key, maxSteps)
	if err != nil {
		return Journey{}, err
	}
	j.Truncated = len(msgs) >= maxSteps || len(letters) >= maxSteps
	var first, last time.Time
	span := func(t time.Time) {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	addStream := func(s string) {
		if s != "" && !slices.Contains(j.Streams, s) {
			j.Streams = append(j.Streams, s)
		}
	}
	for _, m := range msgs {
		j.Steps = append(j.Steps, Step{At: m.At, Kind: StepMessage, Stream: m.Stream, Subject: m.Subject, Seq: m.Seq,
			Size: m.Size, TraceID: m.TraceID, MatchedBy: m.Keys})
		span(m.At)
		addStream(m.Stream)
		if m.TraceID != "" && !slices.Contains(j.TraceIDs, m.TraceID) {
			j.TraceIDs = append(j.TraceIDs, m.TraceID)
		}
	}
	for _, d := range letters {
		j.Steps = append(j.Steps, Step{At: d.FailedAt, Kind: StepDeadLetter, Stream: d.Stream, Subject: d.Subject,
			Seq: d.StreamSeq, Consumer: d.Consumer, Service: d.Service, DeadLetter: d.ID, Reason: d.Reason,
			Error: d.Error, Status: d.Status})
		span(d.FailedAt)
		addStream(d.Stream)
	}
	for _, a := range actions {
		if strings.HasSuffix(a.Action, ".start") {
			continue // an intent recorded before sending; its outcome follows
		}
		j.Steps = append(j.Steps, Step{At: a.At, Kind: StepAction, Action: a.Action, Actor: a.Actor,
			DeadLetter: a.DeadLetter, Subject: a.Subject, Stream: a.AckStream, Seq: a.AckSeq})
		span(a.At)
	}
	if len(j.Streams) > 0 {
		changes, err := r.db.BreakerChangesOn(ctx, j.Streams, first, last, maxSteps)
		if err != nil {
			return Journey{}, err
		}
		for _, c := range changes {
			j.Steps = append(j.Steps, Step{At: c.At, Kind: StepBreaker, Stream: c.Stream, Consumer: c.Consumer,
				Service: c.Service, Breaker: c.Breaker, From: c.From, To: c.To})
		}
	}
	// In time order; at one instant, the order things happen in: the
	// message, its failure, the breaker, the operator's action.
	rank := map[string]int{StepMessage: 0, StepDeadLetter: 1, StepBreaker: 2, StepAction: 3}
	slices.SortStableFunc(j.Steps, func(a, b Step) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return rank[a.Kind] - rank[b.Kind]
	})
	placeRedeliveries(j.Steps)
	return j, nil
}

// tappedBy says whether m, a message of a work queue followed live (its
// sequence unknown), is what redelivery a published: the same subject
// within a second.
func tappedBy(m, a Step) bool {
	d := m.At.Sub(a.At)
	return m.Seq == 0 && m.Subject == a.Subject && d > -time.Second && d < time.Second
}

// placeRedeliveries moves each message a redelivery published to just
// after that redelivery: both may fall on the same millisecond, and the
// message cannot come first.
func placeRedeliveries(steps []Step) {
	for i := 0; i < len(steps); i++ {
		a := steps[i]
		if a.Kind != StepAction || a.Stream == "" {
			continue
		}
		for k := 0; k < i; k++ {
			if m := steps[k]; m.Kind == StepMessage && m.Stream == a.Stream && (m.Seq == a.Seq || tappedBy(m, a)) {
				copy(steps[k:i], steps[k+1:i+1])
				steps[i] = m
				i--
				break
			}
		}
	}
}

// Stuck lists the journeys keyed by name that saw start and none of end,
// started between lookback and within ago, oldest first, at most limit.
func (r *Reader) Stuck(ctx context.Context, name, start string, end []string, within, lookback time.Duration, now time.Time, limit int) ([]store.StuckJourney, error) {
	return r.db.StuckJourneys(ctx, store.StuckJourneyQuery{Name: name, Start: start, End: end,
		StartedBefore: now.Add(-within), StartedAfter: now.Add(-lookback), Limit: limit})
}
