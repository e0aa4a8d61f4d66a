package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"
)

func TestRowErrorsAreToldApartFromDatabaseFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t)
	_, err := db.SQLForTests().ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`)
	require.NoError(t, err)
	var dup, tooLarge, noTable error
	require.NoError(t, db.withRawTx(ctx, func(tx *rawTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (id, n) VALUES (1, 1)`)
		require.NoError(t, err)
		_, dup = tx.ExecContext(ctx, `INSERT INTO t (id, n) VALUES (1, 2)`)
		_, tooLarge = tx.ExecContext(ctx, `INSERT INTO t (id, n) VALUES (2, ?)`, uint64(1<<63))
		_, noTable = tx.ExecContext(ctx, `INSERT INTO missing (id) VALUES (1)`)
		return nil
	}))
	require.True(t, IsRowError(dup))
	require.Contains(t, Explain(dup), "already holds a row with this id")
	require.True(t, IsRowError(tooLarge))
	require.ErrorIs(t, tooLarge, ErrValue)
	require.Contains(t, Explain(tooLarge), "does not fit the index")
	// A missing table is the database, not the row: never skipped past.
	require.Error(t, noTable)
	require.False(t, IsRowError(noTable))
	require.Empty(t, Explain(noTable))
	require.False(t, IsRowError(errors.New("anything else")))
	require.False(t, IsRowError(nil))
}

func TestDatabaseWideFailuresAreNeverRowErrors(t *testing.T) {
	t.Parallel()
	for code, words := range map[sqlite3.ErrNo]string{
		sqlite3.ErrFull:     "is full",
		sqlite3.ErrBusy:     "locked by another process",
		sqlite3.ErrLocked:   "locked by another process",
		sqlite3.ErrReadonly: "cannot be written",
		sqlite3.ErrIoErr:    "the disk failed",
		sqlite3.ErrCorrupt:  "damaged",
	} {
		err := fmt.Errorf("index dead letters: %w", sqlite3.Error{Code: code})
		require.False(t, IsRowError(err), code)
		require.Contains(t, Explain(err), words, code)
	}
}
