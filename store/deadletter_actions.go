package store

import (
	"context"
	"fmt"
	"time"
)

// DeadLetterAction is a record of the actions stream as the index keeps
// it: who did what to a dead letter, and the status it leaves.
type DeadLetterAction struct {
	// Seq is the record's sequence in the actions stream: a record is
	// stored once, and the newest one sets the status.
	Seq        uint64
	DeadLetter uint64
	Action     string
	Actor      string
	At         time.Time
	Attempt    int
	// Status is the dead letter's status once this is its newest record.
	Status string
	// Detail is the whole record as the stream holds it (JSON).
	Detail []byte
}

// ApplyDeadLetterActions stores records in one transaction, each once,
// setting each dead letter's status from its newest record: a record
// applied late (the stream reader reaching one applied at once) changes
// nothing. With positionKey, the stored position of that name moves to
// pos in the same transaction.
func (db *DB) ApplyDeadLetterActions(ctx context.Context, recs []DeadLetterAction, positionKey string, pos uint64) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply actions: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO dead_letter_actions (seq, dead_letter_id, action, actor, at, attempt, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("apply actions: %w", err)
	}
	defer ins.Close()
	upd, err := tx.PrepareContext(ctx, `UPDATE dead_letters SET status = ? WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM dead_letter_actions WHERE dead_letter_id = ? AND seq > ?)`)
	if err != nil {
		return fmt.Errorf("apply actions: %w", err)
	}
	defer upd.Close()
	for _, a := range recs {
		if _, err := ins.ExecContext(ctx, a.Seq, a.DeadLetter, a.Action, a.Actor, a.At.UnixMilli(), a.Attempt, string(a.Detail)); err != nil {
			return fmt.Errorf("apply action %d: %w", a.Seq, err)
		}
		if _, err := upd.ExecContext(ctx, a.Status, a.DeadLetter, a.DeadLetter, a.Seq); err != nil {
			return fmt.Errorf("apply action %d: %w", a.Seq, err)
		}
	}
	if positionKey != "" {
		if err := setPosition(ctx, tx, positionKey, pos); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply actions: %w", err)
	}
	return nil
}

// applyRecordedStatus sets the status of freshly indexed dead letters whose
// actions were indexed before them (a replica catching up, a rebuild).
// The rows to change are found from the actions' index, not by walking
// the batch: almost always there are none.
func applyRecordedStatus(ctx context.Context, tx execer, fromID, toID uint64) error {
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

// CountDeadLetterActions counts, for each of ids, its records of action;
// dead letters without one are absent from the map.
func (db *DB) CountDeadLetterActions(ctx context.Context, ids []uint64, action string) (map[uint64]int, error) {
	out := map[uint64]int{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{action}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT dead_letter_id, COUNT(*) FROM dead_letter_actions
		WHERE action = ? AND dead_letter_id IN (`+marks(len(ids))+`) GROUP BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("count %s records: %w", action, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uint64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count %s records: %w", action, err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// LastDeadLetterAction is a dead letter's newest record, as decisions on
// the next one need it.
type LastDeadLetterAction struct {
	Seq    uint64
	Action string
	At     time.Time
	// Job is the bulk job that recorded it, if any.
	Job string
}

// LastDeadLetterActions returns the newest record of each of ids; dead
// letters without one are absent from the map.
func (db *DB) LastDeadLetterActions(ctx context.Context, ids []uint64) (map[uint64]LastDeadLetterAction, error) {
	out := make(map[uint64]LastDeadLetterAction, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT a.dead_letter_id, a.seq, a.action, a.at,
			COALESCE(json_extract(a.detail, '$.job'), '') FROM dead_letter_actions a
		WHERE a.dead_letter_id IN (`+marks(len(ids))+`)
		AND a.seq = (SELECT MAX(seq) FROM dead_letter_actions b WHERE b.dead_letter_id = a.dead_letter_id)`, args...)
	if err != nil {
		return nil, fmt.Errorf("last actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uint64
		var l LastDeadLetterAction
		var at int64
		if err := rows.Scan(&id, &l.Seq, &l.Action, &at, &l.Job); err != nil {
			return nil, fmt.Errorf("last actions: %w", err)
		}
		l.At = time.UnixMilli(at).UTC()
		out[id] = l
	}
	return out, rows.Err()
}

// DeadLetterActionDetails returns the records of dead letter id, oldest
// first, as the stream holds them.
func (db *DB) DeadLetterActionDetails(ctx context.Context, id uint64) ([][]byte, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT detail FROM dead_letter_actions WHERE dead_letter_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("history of %d: %w", id, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var detail []byte
		if err := rows.Scan(&detail); err != nil {
			return nil, fmt.Errorf("history of %d: %w", id, err)
		}
		out = append(out, detail)
	}
	return out, rows.Err()
}
