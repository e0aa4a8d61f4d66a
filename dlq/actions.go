package dlq

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// ActionSubjectPrefix starts the subjects actions are recorded on:
// jetwatch.dlq.actions.<dead letter id>.
const ActionSubjectPrefix = "jetwatch.dlq.actions."

// Actions operators take on dead letters.
const (
	ActionRedeliver = "redeliver"
	ActionDiscard   = "discard"
)

// Steps of a redelivery, recorded around the send.
const (
	ActionRedeliverStart = "redeliver.start"
	ActionRedeliverFail  = "redeliver.fail"
)

// Action is one thing an operator did to a dead letter, as recorded in the
// actions stream.
type Action struct {
	DeadLetter uint64    `json:"dead_letter"`
	Action     string    `json:"action"`
	Actor      string    `json:"actor"`
	At         time.Time `json:"at"`
	Attempt    int       `json:"attempt"`
	Subject    string    `json:"subject,omitempty"`
	Edited     bool      `json:"edited,omitempty"`
	AckStream  string    `json:"ack_stream,omitempty"`
	AckSeq     uint64    `json:"ack_seq,omitempty"`
	Duplicate  bool      `json:"duplicate,omitempty"`
	Note       string    `json:"note,omitempty"`
	// Job is the bulk job that acted, if one did: a job resumed after a
	// crash finishes its own interrupted redeliveries at once.
	Job string `json:"job,omitempty"`
}

// Row is action a, recorded at seq in the actions stream, as the index
// keeps it.
func (a Action) Row(seq uint64) (store.DeadLetterAction, error) {
	detail, err := json.Marshal(a)
	if err != nil {
		return store.DeadLetterAction{}, fmt.Errorf("apply action: %w", err)
	}
	return store.DeadLetterAction{Seq: seq, DeadLetter: a.DeadLetter, Action: a.Action, Actor: a.Actor, At: a.At,
		Attempt: a.Attempt, Status: statusAfter(a.Action), Detail: detail}, nil
}

// statusAfter is a dead letter's status once action is its newest record.
func statusAfter(action string) string {
	switch action {
	case ActionDiscard:
		return store.StatusDiscarded
	case ActionRedeliverStart:
		return store.StatusRedelivering
	case ActionRedeliverFail:
		return store.StatusPending
	}
	return store.StatusRedelivered
}
