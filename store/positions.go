package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Position is how far the in-order reader named name has indexed its
// stream: the last stream sequence stored, 0 before the first.
func (db *DB) Position(ctx context.Context, name string) (uint64, error) {
	return position(ctx, db.sql, name)
}

// positionQuery reads a reader's position.
const positionQuery = `SELECT last_seq FROM stream_positions WHERE name = ?`

func position(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, name string) (uint64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, positionQuery, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read position %s: %w", name, err)
	}
	return uint64(seq), nil
}

// execer runs a statement: a *sql.Tx or a *rawTx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// setPosition records a reader's position in the transaction that stores
// what it read, so the two never disagree. It never moves back.
func setPosition(ctx context.Context, tx execer, name string, seq uint64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO stream_positions (name, last_seq) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)`, name, seq); err != nil {
		return fmt.Errorf("store position %s: %w", name, err)
	}
	return nil
}
