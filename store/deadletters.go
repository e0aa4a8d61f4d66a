package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DeadLetterRow is a dead letter as the index stores it, worked out from
// its DLQ message before the write transaction begins.
type DeadLetterRow struct {
	// ID is the dead letter's sequence in the DLQ stream.
	ID               uint64
	DLQSubject       string
	Stream           string
	Consumer         string
	Subject          string
	StreamSeq        uint64
	Reason           string
	Error            string
	Service          string
	Deliveries       uint64
	FailedAt         time.Time
	PayloadAvailable bool
	UnavailableWhy   string
	Size             int
	Fingerprint      string
	// Problems is the JSON list of what was wrong with the envelope.
	Problems string
	// SearchText is what full-text search sees of the payload: its start
	// when it is text, nothing when it is binary.
	SearchText string
	// Keys are the trace id and correlation values of the original
	// message, by which a journey finds the dead letter.
	Keys []string
}

// RowError is SQLite refusing to store one dead letter's row.
type RowError struct {
	ID  uint64
	Err error
}

func (e *RowError) Error() string { return fmt.Sprintf("dead letter %d: %v", e.ID, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// RefusedRow finds, in a failure to store, a row SQLite refused for what
// it holds (see IsRowError): the other rows may be stored without it.
func RefusedRow(err error) (*RowError, bool) {
	var re *RowError
	if errors.As(err, &re) && IsRowError(re.Err) {
		return re, true
	}
	return nil, false
}

// InsertDeadLetters stores rows (in ascending ID order) and moves the
// position named positionKey to the last, in one transaction. Rows at or
// before the stored position (another process got there first) are
// skipped; it returns the rows it stored. A row SQLite refuses fails the
// whole transaction with a *RowError naming it.
//
// It is the index's hot path, so it drives the SQLite driver directly
// (rawTx).
func (db *DB) InsertDeadLetters(ctx context.Context, positionKey string, rows []DeadLetterRow) ([]DeadLetterRow, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	err := db.withRawTx(ctx, func(tx *rawTx) error {
		pos, err := positionRaw(tx, positionKey)
		if err != nil {
			return err
		}
		// Skipped so the full-text step below never sees a row twice.
		for len(rows) > 0 && rows[0].ID <= pos {
			rows = rows[1:]
		}
		if len(rows) == 0 {
			return nil
		}
		// indexed_at is the same for the whole batch: one bound value less per row.
		ins, err := tx.Prepare(`INSERT INTO dead_letters (id, dlq_subject, stream, consumer, subject, stream_seq,
			reason, error, service, deliveries, failed_at, indexed_at, payload_available, unavailable_why, size, fingerprint,
			problems) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ` + strconv.FormatInt(time.Now().UnixMilli(), 10) +
			`, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("index dead letters: %w", err)
		}
		defer ins.Close()
		// Full-text search covers the subject, the error and the payload
		// when it is text.
		fts, err := tx.Prepare(`INSERT INTO dead_letters_fts (rowid, subject, error, payload) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("index dead letters for search: %w", err)
		}
		defer fts.Close()
		var keys *rawStmt
		first, last := rows[0].ID, rows[0].ID
		for i := range rows {
			r := &rows[i]
			last = max(last, r.ID)
			if err := ins.Exec(r.ID, r.DLQSubject, r.Stream, r.Consumer, r.Subject, r.StreamSeq,
				r.Reason, r.Error, r.Service, r.Deliveries, r.FailedAt.UnixMilli(), r.PayloadAvailable,
				r.UnavailableWhy, r.Size, r.Fingerprint, r.Problems); err != nil {
				return &RowError{r.ID, err}
			}
			if err := fts.Exec(r.ID, r.Subject, r.Error, r.SearchText); err != nil {
				return &RowError{r.ID, fmt.Errorf("for search: %w", err)}
			}
			if len(r.Keys) > 0 && keys == nil {
				// Prepared on the first dead letter with keys: without
				// journeys there are none, and nothing more is done.
				if keys, err = tx.Prepare(`INSERT OR IGNORE INTO dead_letter_keys (key, dead_letter_id) VALUES (?, ?)`); err != nil {
					return fmt.Errorf("index dead letters for journeys: %w", err)
				}
				defer keys.Close()
			}
			for _, k := range r.Keys {
				if err := keys.Exec(k, r.ID); err != nil {
					return &RowError{r.ID, fmt.Errorf("for journeys: %w", err)}
				}
			}
		}
		if err := applyRecordedStatus(ctx, tx, first, last); err != nil {
			return err
		}
		return setPosition(ctx, tx, positionKey, last)
	})
	if err != nil {
		return nil, fmt.Errorf("index dead letters: %w", err)
	}
	return rows, nil
}

// UnindexableDeadLetter is a dead letter the index could not store. Its
// message is still in the DLQ stream, under ID.
type UnindexableDeadLetter struct {
	ID         uint64    `json:"id"` // DLQ stream sequence
	DLQSubject string    `json:"dlq_subject"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// SkipDeadLetter records u as a dead letter the index cannot store and
// moves the position named positionKey past it, in one transaction. It
// says false, and changes nothing, when the position is past u already.
func (db *DB) SkipDeadLetter(ctx context.Context, positionKey string, u UnindexableDeadLetter) (bool, error) {
	skipped := false
	err := db.withRawTx(ctx, func(tx *rawTx) error {
		pos, err := positionRaw(tx, positionKey)
		if err != nil || u.ID <= pos {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dead_letters_unindexable (id, dlq_subject, reason, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET dlq_subject = excluded.dlq_subject, reason = excluded.reason, at = excluded.at`,
			u.ID, u.DLQSubject, u.Reason, u.At.UnixMilli()); err != nil {
			return fmt.Errorf("record unindexable dead letter %d: %w", u.ID, err)
		}
		skipped = true
		return setPosition(ctx, tx, positionKey, u.ID)
	})
	return skipped, err
}

// UnindexableDeadLetters counts the dead letters the index could not
// store and returns the newest, up to limit.
func (db *DB) UnindexableDeadLetters(ctx context.Context, limit int) (int, []UnindexableDeadLetter, error) {
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters_unindexable`).Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("count unindexable dead letters: %w", err)
	}
	recent := []UnindexableDeadLetter{}
	if n == 0 {
		return 0, recent, nil
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT id, dlq_subject, reason, at FROM dead_letters_unindexable ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("list unindexable dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u UnindexableDeadLetter
		var at int64
		if err := rows.Scan(&u.ID, &u.DLQSubject, &u.Reason, &at); err != nil {
			return 0, nil, fmt.Errorf("list unindexable dead letters: %w", err)
		}
		u.At = time.UnixMilli(at).UTC()
		recent = append(recent, u)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("list unindexable dead letters: %w", err)
	}
	return n, recent, nil
}

// ResetDeadLetters forgets every indexed dead letter and action, and the
// positions named positionKeys, so the next run rebuilds them from the
// start of their streams.
func (db *DB) ResetDeadLetters(ctx context.Context, positionKeys ...string) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset index: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM dead_letters`,
		`INSERT INTO dead_letters_fts (dead_letters_fts) VALUES ('delete-all')`,
		`DELETE FROM dead_letter_actions`,
		`DELETE FROM dead_letters_unindexable`,
		`DELETE FROM dead_letter_keys`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset index: %w", err)
		}
	}
	for _, key := range positionKeys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM stream_positions WHERE name = ?`, key); err != nil {
			return fmt.Errorf("reset index: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reset index: %w", err)
	}
	return nil
}
