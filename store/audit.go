package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// AuditRow is an entry of the audit log as the index keeps it; ID is its
// sequence in the audit stream.
type AuditRow struct {
	ID     uint64
	Time   time.Time
	Actor  string
	Method string
	Action string
	Target string
	// Account is the --account of a dead letter acted on; '' for the
	// main account's.
	Account string
	Result  string
	Failed  bool
	Addr    string
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Actor  string
	Action string
	// Before lists entries older than this id (keyset paging).
	Before uint64
}

// InsertAuditRows stores rows, each once, and moves the position named
// positionKey to pos, in one transaction.
func (db *DB) InsertAuditRows(ctx context.Context, rows []AuditRow, positionKey string, pos uint64) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index audit entries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, e := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO audit (id, at, actor, method, action, target, account, result, failed, addr)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Time.UnixMilli(), e.Actor, e.Method, e.Action,
			e.Target, e.Account, e.Result, e.Failed, e.Addr); err != nil {
			return fmt.Errorf("index audit entry %d: %w", e.ID, err)
		}
	}
	if err := setPosition(ctx, tx, positionKey, pos); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index audit entries: %w", err)
	}
	return nil
}

// AuditRows returns up to limit (1 to 1,000) entries matching f, newest
// first.
func (db *DB) AuditRows(ctx context.Context, f AuditFilter, limit int) ([]AuditRow, error) {
	q := `SELECT id, at, actor, method, action, target, account, result, failed, addr FROM audit WHERE 1=1`
	var args []any
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.Before > 0 {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ` + strconv.Itoa(min(max(limit, 1), 1000))
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	var out []AuditRow
	for rows.Next() {
		var e AuditRow
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Method, &e.Action, &e.Target, &e.Account, &e.Result, &e.Failed, &e.Addr); err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		e.Time = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
