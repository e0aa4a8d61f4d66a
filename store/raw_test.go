package store

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckpointsRunInTheBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t)
	var auto int
	require.NoError(t, db.SQLForTests().QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto))
	require.Zero(t, auto, "commits must not checkpoint: the background checkpointer does")

	before, err := os.Stat(db.Path())
	require.NoError(t, err)
	// 8 MiB through the log: far past SQLite's own threshold (1000 pages),
	// so with it on, a commit would have copied them already.
	_, err = db.SQLForTests().ExecContext(ctx, `CREATE TABLE filler (b BLOB)`)
	require.NoError(t, err)
	blob := []byte(strings.Repeat("x", 64<<10))
	for range 128 {
		_, err := db.SQLForTests().ExecContext(ctx, `INSERT INTO filler (b) VALUES (?)`, blob)
		require.NoError(t, err)
	}
	// Only the checkpointer copies pages into the database file.
	require.Eventually(t, func() bool {
		st, err := os.Stat(db.Path())
		return err == nil && st.Size() >= before.Size()+8<<20
	}, 10*time.Second, 20*time.Millisecond)
	logPages, copied, err := db.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, logPages, copied)
}

func TestRawTxCommitsOrRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t)
	_, err := db.SQLForTests().ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, b BLOB, f INTEGER)`)
	require.NoError(t, err)

	require.NoError(t, db.withRawTx(ctx, func(tx *rawTx) error {
		ins, err := tx.Prepare(`INSERT INTO t (id, s, b, f) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i := range 3 {
			if err := ins.Exec(uint64(i+1), "row", []byte{0, 0xff}, i == 1); err != nil {
				return err
			}
		}
		return setPosition(ctx, tx, "t", 3)
	}))
	pos, err := db.Position(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 3, pos)
	var n int
	var b []byte
	require.NoError(t, db.SQLForTests().QueryRowContext(ctx, `SELECT COUNT(*), MAX(b) FROM t WHERE f = 0`).Scan(&n, &b))
	require.Equal(t, 2, n)
	require.Equal(t, []byte{0, 0xff}, b)

	failed := errors.New("handler failed")
	err = db.withRawTx(ctx, func(tx *rawTx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, s) VALUES (?, ?)`, 9, "gone"); err != nil {
			return err
		}
		got, err := positionRaw(tx, "t")
		require.NoError(t, err)
		require.EqualValues(t, 3, got)
		return failed
	})
	require.ErrorIs(t, err, failed)
	require.NoError(t, db.SQLForTests().QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n))
	require.Equal(t, 3, n, "a failed transaction leaves nothing behind")

	err = db.withRawTx(ctx, func(tx *rawTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (?)`, uint64(1)<<63)
		return err
	})
	require.ErrorContains(t, err, "does not fit")
	err = db.withRawTx(ctx, func(tx *rawTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (?)`, time.Now())
		return err
	})
	require.ErrorContains(t, err, "unsupported type time.Time")
	// The connection is usable again after each failure.
	require.NoError(t, db.CheckWritable(ctx))
}
