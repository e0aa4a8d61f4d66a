package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// rawTx is a write transaction driven through the SQLite driver directly,
// for a writer whose rows are many and small: database/sql's bookkeeping
// per statement (converting and checking each argument, locking, a result
// object) costs more than a microsecond a row. Arguments may be int64,
// uint64 (up to MaxInt64), int, float64, bool, string, []byte or nil.
type rawTx struct {
	ctx  context.Context
	conn *sqlite3.SQLiteConn
	args []driver.NamedValue
}

// withRawTx runs fn in an immediate write transaction on a connection of
// its own, and commits when fn returns nil. Statements ignore ctx's
// cancellation once begun (the driver would run each on a goroutine of its
// own to honour it); a transaction is written whole or not at all.
func (db *DB) withRawTx(ctx context.Context, fn func(tx *rawTx) error) (err error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("database connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("database connection is a %T, not SQLite", dc)
		}
		tx := &rawTx{ctx: context.WithoutCancel(ctx), conn: c}
		if _, err := c.ExecContext(tx.ctx, "BEGIN IMMEDIATE", nil); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := fn(tx); err != nil {
			if _, rerr := c.ExecContext(tx.ctx, "ROLLBACK", nil); rerr != nil {
				return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
			return err
		}
		if _, err := c.ExecContext(tx.ctx, "COMMIT", nil); err != nil {
			// A failed COMMIT may leave the transaction open.
			if c.AutoCommit() {
				return fmt.Errorf("commit: %w", err)
			}
			_, rerr := c.ExecContext(tx.ctx, "ROLLBACK", nil)
			return errors.Join(fmt.Errorf("commit: %w", err), rerr)
		}
		return nil
	})
}

// bind turns args into the driver's named values, reusing tx's slice.
func (tx *rawTx) bind(args []any) ([]driver.NamedValue, error) {
	tx.args = tx.args[:0]
	for i, a := range args {
		v, err := rawValue(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		tx.args = append(tx.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return tx.args, nil
}

func rawValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, int64, float64, bool, string, []byte:
		return v, nil
	case int:
		return int64(v), nil
	case uint64:
		if v > 1<<63-1 {
			return nil, fmt.Errorf("%w: %d does not fit in an SQLite integer", ErrValue, v)
		}
		return int64(v), nil
	default:
		return nil, fmt.Errorf("%w: unsupported type %T", ErrValue, a)
	}
}

// ExecContext runs query with args; the same shape as *sql.Tx's, so code
// can write through either. ctx is the transaction's.
func (tx *rawTx) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	named, err := tx.bind(args)
	if err != nil {
		return nil, err
	}
	return tx.conn.ExecContext(tx.ctx, query, named)
}

// QueryInt64 returns the first column of the first row of query, and
// false when there is no row.
func (tx *rawTx) QueryInt64(query string, args ...any) (int64, bool, error) {
	named, err := tx.bind(args)
	if err != nil {
		return 0, false, err
	}
	rows, err := tx.conn.QueryContext(tx.ctx, query, named)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		return 0, false, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, false, fmt.Errorf("%s: got %T, want an integer", query, dest[0])
	}
	return n, true, nil
}

// Query runs query and calls fn with each row's values, which are only
// valid until fn returns (text comes as string, so it is a copy).
func (tx *rawTx) Query(query string, fn func(row []driver.Value) error, args ...any) error {
	named, err := tx.bind(args)
	if err != nil {
		return err
	}
	rows, err := tx.conn.QueryContext(tx.ctx, query, named)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := fn(dest); err != nil {
			return err
		}
	}
}

// rawStmt is a statement prepared in a rawTx, to run many times.
type rawStmt struct {
	tx   *rawTx
	stmt *sqlite3.SQLiteStmt
}

// Prepare prepares query; close the statement before the transaction ends.
func (tx *rawTx) Prepare(query string) (*rawStmt, error) {
	s, err := tx.conn.PrepareContext(tx.ctx, query)
	if err != nil {
		return nil, err
	}
	return &rawStmt{tx: tx, stmt: s.(*sqlite3.SQLiteStmt)}, nil
}

// Exec runs the statement with args.
func (s *rawStmt) Exec(args ...any) error {
	named, err := s.tx.bind(args)
	if err != nil {
		return err
	}
	_, err = s.stmt.ExecContext(s.tx.ctx, named)
	return err
}

// ExecCount runs the statement with args and returns how many rows it
// changed.
func (s *rawStmt) ExecCount(args ...any) (int64, error) {
	named, err := s.tx.bind(args)
	if err != nil {
		return 0, err
	}
	res, err := s.stmt.ExecContext(s.tx.ctx, named)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ExecID runs the statement with args and returns the rowid it inserted.
func (s *rawStmt) ExecID(args ...any) (int64, error) {
	named, err := s.tx.bind(args)
	if err != nil {
		return 0, err
	}
	res, err := s.stmt.ExecContext(s.tx.ctx, named)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Close releases the statement.
func (s *rawStmt) Close() error { return s.stmt.Close() }

// positionRaw is Position read inside a rawTx.
func positionRaw(tx *rawTx, name string) (uint64, error) {
	seq, _, err := tx.QueryInt64(positionQuery, name)
	if err != nil {
		return 0, fmt.Errorf("read position %s: %w", name, err)
	}
	return uint64(seq), nil
}
