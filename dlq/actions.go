package dlq

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/jetwatch/jetwatch/store"
)

// applyAction stores an action (once, by its actions-stream sequence) and
// sets the dead letter's status.
func applyAction(ctx context.Context, tx *sql.Tx, seq uint64, a Action) error {
	detail, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("apply action: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO dead_letter_actions (seq, dead_letter_id, action, actor, at, attempt, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, seq, a.DeadLetter, a.Action, a.Actor, a.At.UnixMilli(), a.Attempt, string(detail)); err != nil {
		return fmt.Errorf("apply action: %w", err)
	}
	// The status is the newest record's: a record applied late (the
	// stream reader reaching one this process applied at once) changes
	// nothing.
	if _, err := tx.ExecContext(ctx, `UPDATE dead_letters SET status = ? WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM dead_letter_actions WHERE dead_letter_id = ? AND seq > ?)`,
		statusAfter(a.Action), a.DeadLetter, a.DeadLetter, seq); err != nil {
		return fmt.Errorf("apply action: %w", err)
	}
	return nil
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

// applyRecordedStatus sets the status of freshly indexed dead letters whose
// actions were indexed before them (a replica catching up, a rebuild).
// The rows to change are found from the actions' index, not by walking
// the batch: almost always there are none.
func applyRecordedStatus(ctx context.Context, tx store.Execer, fromID, toID uint64) error {
	_, err := tx.ExecContext(ctx, `UPDATE dead_letters SET status = (
			SELECT CASE a.action WHEN 'discard' THEN 'discarded' WHEN 'redeliver.start' THEN 'redelivering'
				WHEN 'redeliver.fail' THEN 'pending' ELSE 'redelivered' END
			FROM dead_letter_actions a WHERE a.dead_letter_id = dead_letters.id ORDER BY a.seq DESC LIMIT 1)
		WHERE id IN (SELECT dead_letter_id FROM dead_letter_actions WHERE dead_letter_id BETWEEN ? AND ?)`,
		fromID, toID)
	if err != nil {
		return fmt.Errorf("apply recorded status: %w", err)
	}
	return nil
}
