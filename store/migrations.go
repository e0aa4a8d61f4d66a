package store

import (
	"context"
	"fmt"
)

// migrations is the ordered schema history. Never edit an entry that has
// shipped: append a new one. Each runs in its own transaction together with
// the bump of the schema version.
var migrations = []string{
	// 1: latest stream/consumer/server state and their time series.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE streams (
	name       TEXT PRIMARY KEY,
	sampled_at INTEGER NOT NULL, -- unix ms
	messages   INTEGER NOT NULL,
	bytes      INTEGER NOT NULL,
	health     TEXT NOT NULL,
	data       TEXT NOT NULL,    -- JSON of Stream without its config
	config     TEXT NOT NULL     -- the server's JSON of the stream config
);

CREATE TABLE consumers (
	stream          TEXT NOT NULL,
	name            TEXT NOT NULL,
	sampled_at      INTEGER NOT NULL,
	num_pending     INTEGER NOT NULL,
	num_ack_pending INTEGER NOT NULL,
	stalled         INTEGER NOT NULL,
	health          TEXT NOT NULL,
	data            TEXT NOT NULL, -- JSON of Consumer without its config
	config          TEXT NOT NULL, -- the server's JSON of the consumer config
	PRIMARY KEY (stream, name)
);
CREATE INDEX consumers_pending ON consumers (num_pending DESC);
CREATE INDEX consumers_stalled ON consumers (stalled) WHERE stalled = 1;

CREATE TABLE servers (
	name       TEXT PRIMARY KEY,
	sampled_at INTEGER NOT NULL,
	data       TEXT NOT NULL -- JSON of Server
);

-- res is the resolution in seconds: 0 raw, 300 five-minute, 3600 hourly.
CREATE TABLE stream_samples (
	stream    TEXT NOT NULL,
	res       INTEGER NOT NULL,
	ts        INTEGER NOT NULL, -- unix ms (bucket start for res > 0)
	messages  INTEGER NOT NULL,
	bytes     INTEGER NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	deleted   INTEGER NOT NULL,
	consumers INTEGER NOT NULL,
	PRIMARY KEY (stream, res, ts)
) WITHOUT ROWID;

CREATE TABLE consumer_samples (
	stream          TEXT NOT NULL,
	consumer        TEXT NOT NULL,
	res             INTEGER NOT NULL,
	ts              INTEGER NOT NULL,
	num_pending     INTEGER NOT NULL,
	num_ack_pending INTEGER NOT NULL,
	num_redelivered INTEGER NOT NULL,
	num_waiting     INTEGER NOT NULL,
	delivered_seq   INTEGER NOT NULL, -- consumer sequence: counts deliveries
	ack_floor_seq   INTEGER NOT NULL, -- consumer sequence of the ack floor
	PRIMARY KEY (stream, consumer, res, ts)
) WITHOUT ROWID;
`,
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.sql.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var version int
	if err := db.sql.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this jetwatch knows (%d): run a newer jetwatch or delete the database to rebuild it", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := db.sql.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, i+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}
