package dlq

import (
	"encoding/json"
	"fmt"

	"github.com/jetwatch/jetwatch/store"
)

// actionRow is action a, recorded at seq in the actions stream, as the index
// keeps it.
func actionRow(seq uint64, a Action) (store.DeadLetterAction, error) {
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
