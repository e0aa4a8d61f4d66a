package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// driverName is the sqlite3 driver with jetwatch's SQL functions.
const driverName = "sqlite3_jetwatch"

var registerDriver sync.Once

// SubjectMatches reports whether a NATS subject matches a pattern with the
// wildcards * (one token) and > (one or more trailing tokens). A pattern
// without wildcards matches itself only.
func SubjectMatches(pattern, subject string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(subject, ".")
	for i, p := range pt {
		switch {
		case p == ">" && i == len(pt)-1:
			return len(st) > i
		case i >= len(st):
			return false
		case p != "*" && p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// FileName is the name of the database file inside the data directory.
const FileName = "jetwatch.db"

// DB is jetwatch's SQLite database.
type DB struct {
	sql  *sql.DB
	path string
	// stopCheckpoints ends the checkpointer; checkpointed closes when it
	// has.
	stopCheckpoints context.CancelFunc
	checkpointed    chan struct{}
	logger          atomic.Pointer[slog.Logger]
}

// checkpointEvery is how often the write-ahead log is copied into the
// database file.
const checkpointEvery = 500 * time.Millisecond

// walSizeLimit is the size the write-ahead log is cut back to once it has
// been copied into the database whole.
const walSizeLimit = 64 << 20

// Open creates dataDir if needed, opens (or creates) the database in it and
// applies pending migrations. An unwritable directory is reported as such, so
// the operator knows to fix permissions or pass another --data.
func Open(ctx context.Context, dataDir string) (*DB, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory %s cannot be created: %w", dataDir, err)
	}
	probe, err := os.CreateTemp(dataDir, ".write-probe-*")
	if err != nil {
		return nil, fmt.Errorf("data directory %s is not writable (check its owner and permissions, or pass another --data): %w", dataDir, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	path := filepath.Join(dataDir, FileName)
	return OpenFile(ctx, path)
}

// OpenFile opens the database at path and applies pending migrations.
func OpenFile(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	// Immediate transactions take the write lock up front, so two writers
	// wait on busy_timeout instead of failing with SQLITE_BUSY on upgrade.
	q.Set("_txlock", "immediate")
	registerDriver.Do(func() {
		sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
			// SQLite's own checkpoint runs inside whichever commit
			// crosses its threshold, and that commit then waits for the
			// copy and two fsyncs: the dead-letter index would stall on
			// it every few thousand rows. Checkpoints run on a goroutine
			// of their own instead (DB.checkpoints).
			if _, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = %d", walSizeLimit), nil); err != nil {
				return err
			}
			if err := c.RegisterFunc("search_terms_in", SearchTermsIn, true); err != nil {
				return err
			}
			return c.RegisterFunc("subject_matches", SubjectMatches, true)
		}})
	})
	sqlDB, err := sql.Open(driverName, "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{sql: sqlDB, path: path, checkpointed: make(chan struct{})}
	db.logger.Store(slog.Default())
	if err := db.migrate(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	db.stopCheckpoints = stop
	go db.checkpoints(cctx)
	return db, nil
}

// SetLogger sets where the database reports trouble in the background
// (a checkpoint that fails). Defaults to slog.Default().
func (db *DB) SetLogger(l *slog.Logger) { db.logger.Store(l) }

// checkpoints copies the write-ahead log into the database file every
// checkpointEvery until ctx ends. A passive checkpoint never blocks
// readers or writers; it copies what no reader still needs, and SQLite
// starts the log over (cut back to walSizeLimit) once all of it is copied.
func (db *DB) checkpoints(ctx context.Context) {
	defer close(db.checkpointed)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, err := db.Checkpoint(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			db.logger.Load().Warn("copying the write-ahead log into the database failed; it keeps growing until this succeeds (check disk space and permissions)",
				"component", "store", "path", db.path, "err", err)
		case err == nil && failing:
			failing = false
			db.logger.Load().Info("write-ahead log copied into the database again", "component", "store", "path", db.path)
		}
	}
}

// Checkpoint runs one passive checkpoint and says how many pages the
// write-ahead log holds and how many of them are in the database file.
func (db *DB) Checkpoint(ctx context.Context) (logPages, copied int, err error) {
	var busy int
	if err := db.sql.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied); err != nil {
		return 0, 0, fmt.Errorf("checkpoint %s: %w", db.path, err)
	}
	return logPages, copied, nil
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// SQLForTests is the underlying handle, for tests that look at the
// tables or break them on purpose (a trigger, a full disk). Everything
// else reaches the tables through store's typed methods:
// TestNoSQLOutsideStore fails a build whose non-test code calls this.
func (db *DB) SQLForTests() *sql.DB { return db.sql }

// Close closes the database.
func (db *DB) Close() error {
	db.stopCheckpoints()
	<-db.checkpointed
	return db.sql.Close()
}

// CheckWritable performs a small write, so readiness reflects a full disk or
// a database that went read-only, not only an open file handle.
func (db *DB) CheckWritable(ctx context.Context) error {
	_, err := db.sql.ExecContext(ctx,
		`INSERT INTO meta (key, value) VALUES ('write_probe', ?)
		 ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("database write: %w", err)
	}
	return nil
}

// Meta returns the value stored under key, or ErrNotFound.
func (db *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := db.sql.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta stores value under key.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	_, err := db.sql.ExecContext(ctx,
		`INSERT INTO meta (key, value) VALUES (?, ?)
		 ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write meta %s: %w", key, err)
	}
	return nil
}

// ErrNotFound is returned when a stream, consumer or key is not in the index.
var ErrNotFound = errors.New("not found")
