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
	// 2: dead letters (indexed from the DLQ stream; id is the DLQ stream
	// sequence, so a rebuilt index has the same ids) and the advisory
	// timeline.
	`
CREATE TABLE dead_letters (
	id                INTEGER PRIMARY KEY, -- DLQ stream sequence
	dlq_subject       TEXT NOT NULL,
	stream            TEXT NOT NULL,
	consumer          TEXT NOT NULL,
	subject           TEXT NOT NULL,       -- the original subject
	stream_seq        INTEGER NOT NULL,    -- the original stream sequence, 0 when unknown
	reason            TEXT NOT NULL,
	error             TEXT NOT NULL,
	service           TEXT NOT NULL,
	deliveries        INTEGER NOT NULL,
	failed_at         INTEGER NOT NULL,    -- unix ms
	indexed_at        INTEGER NOT NULL,
	status            TEXT NOT NULL DEFAULT 'pending',
	payload_available INTEGER NOT NULL,
	unavailable_why   TEXT NOT NULL,
	size              INTEGER NOT NULL,
	fingerprint       TEXT NOT NULL,
	problems          TEXT NOT NULL,       -- JSON list of envelope problems
	headers           TEXT NOT NULL,       -- JSON name -> values
	payload           BLOB
);
CREATE INDEX dead_letters_failed ON dead_letters (failed_at DESC, id DESC);
CREATE INDEX dead_letters_stream ON dead_letters (stream, consumer, failed_at DESC);
CREATE INDEX dead_letters_status ON dead_letters (status, failed_at DESC);
CREATE INDEX dead_letters_reason ON dead_letters (reason, failed_at DESC);
CREATE INDEX dead_letters_fingerprint ON dead_letters (fingerprint, failed_at);

-- Full-text search over subject, error and payload text; rowid = id.
CREATE VIRTUAL TABLE dead_letters_fts USING fts5(subject, error, payload, content='', tokenize='unicode61');

-- How far each in-order reader of a JetStream stream has indexed.
CREATE TABLE stream_positions (
	name     TEXT PRIMARY KEY,
	last_seq INTEGER NOT NULL
);

CREATE TABLE events (
	id         INTEGER PRIMARY KEY, -- advisory stream sequence
	kind       TEXT NOT NULL,
	at         INTEGER NOT NULL,    -- unix ms
	stream     TEXT NOT NULL,
	consumer   TEXT NOT NULL,
	severity   TEXT NOT NULL,       -- info, warning, critical
	summary    TEXT NOT NULL,
	data       TEXT NOT NULL        -- the advisory as received
);
CREATE INDEX events_at ON events (at DESC);

CREATE TABLE advisory_counts (
	kind   TEXT NOT NULL,
	stream TEXT NOT NULL,
	consumer TEXT NOT NULL,
	count  INTEGER NOT NULL,
	PRIMARY KEY (kind, stream, consumer)
) WITHOUT ROWID;
`,
	// 3: what operators did to dead letters (indexed from the actions
	// stream; seq is its stream sequence).
	`
CREATE TABLE dead_letter_actions (
	seq            INTEGER PRIMARY KEY,
	dead_letter_id INTEGER NOT NULL,
	action         TEXT NOT NULL,    -- redeliver, discard
	actor          TEXT NOT NULL,
	at             INTEGER NOT NULL, -- unix ms
	attempt        INTEGER NOT NULL,
	detail         TEXT NOT NULL     -- JSON: target subject, edited, publish ack
);
CREATE INDEX dead_letter_actions_letter ON dead_letter_actions (dead_letter_id, seq);
`,
	// 4: subject filters with a literal prefix ("orders.*.paid") become an
	// index range instead of a scan of every dead letter. Lists go newest
	// first by id, so the reason index only slowed ingest. Full-text search
	// keeps no positions (detail=none): its inserts cost a third less, and
	// the search never needed phrases. The index is rebuilt from the DLQ
	// stream, as after any loss of the database.
	`
CREATE INDEX dead_letters_subject ON dead_letters (subject);
DROP INDEX dead_letters_reason;
DROP TABLE dead_letters_fts;
CREATE VIRTUAL TABLE dead_letters_fts USING fts5(subject, error, payload, content='', detail=none, tokenize='unicode61');
DELETE FROM dead_letters;
DELETE FROM dead_letter_actions;
DELETE FROM stream_positions WHERE name IN ('dlq', 'dlq-actions');
`,
	// 5: circuit breakers reported by services, and their transitions.
	`
CREATE TABLE breakers (
	service    TEXT NOT NULL,
	breaker    TEXT NOT NULL,
	state      TEXT NOT NULL,
	since      INTEGER NOT NULL, -- unix ms
	updated_at INTEGER NOT NULL, -- unix ms of the last report
	data       TEXT NOT NULL,    -- JSON of Breaker
	PRIMARY KEY (service, breaker)
);
CREATE TABLE breaker_transitions (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	service    TEXT NOT NULL,
	breaker    TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	at         INTEGER NOT NULL
);
CREATE INDEX breaker_transitions_by ON breaker_transitions (service, breaker, id);
`,
	// 6: the audit log: who did what, indexed from the audit stream.
	`
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY, -- stream sequence in the audit stream
	at      INTEGER NOT NULL,    -- unix ms
	actor   TEXT NOT NULL,
	method  TEXT NOT NULL,
	action  TEXT NOT NULL,
	target  TEXT NOT NULL,
	result  TEXT NOT NULL,
	failed  INTEGER NOT NULL,
	addr    TEXT NOT NULL
);
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
`,
	// 7: the alert delivery log: one row per notification, updated on
	// every attempt, indexed from the stream JETWATCH_ALERT_DELIVERIES.
	`
CREATE TABLE alert_deliveries (
	id          TEXT PRIMARY KEY, -- notification id (idempotency key)
	receiver    TEXT NOT NULL,
	rule        TEXT NOT NULL,
	status      TEXT NOT NULL,    -- firing or resolved
	fingerprint TEXT NOT NULL,
	result      TEXT NOT NULL,    -- delivered, retrying, failed, dropped
	http_status INTEGER NOT NULL,
	latency_ms  INTEGER NOT NULL,
	attempts    INTEGER NOT NULL,
	error       TEXT NOT NULL,
	created_at  INTEGER NOT NULL, -- unix ms the notification was made
	updated_at  INTEGER NOT NULL  -- unix ms of the last attempt
);
CREATE INDEX alert_deliveries_recent ON alert_deliveries (updated_at);
`,
	// 8: lists go newest first by id. An index on status alone keeps ids in
	// order within a status, so a page of the commonest status (pending)
	// is read off the index instead of sorting every match, and each
	// dead letter indexed writes a shorter key.
	`
DROP INDEX dead_letters_status;
CREATE INDEX dead_letters_status ON dead_letters (status);
`,
	// 9: a dead letter's headers and payload are read from the DLQ stream,
	// their system of record, when one is shown or acted on: the index
	// keeps what it filters, sorts and searches by. Rows are half the size
	// and indexing is faster; full-text search is unchanged.
	`
ALTER TABLE dead_letters DROP COLUMN headers;
ALTER TABLE dead_letters DROP COLUMN payload;
`,
	// 10: dead letters the index could not store (SQLite refused the row:
	// a constraint, a value it does not take). The index moves past them
	// and the dead-letters page lists them with the reason; id is the DLQ
	// stream sequence, so the message itself is still there to read.
	`
CREATE TABLE dead_letters_unindexable (
	id          INTEGER PRIMARY KEY, -- DLQ stream sequence
	dlq_subject TEXT NOT NULL,
	reason      TEXT NOT NULL,       -- in the operator's words
	at          INTEGER NOT NULL     -- unix ms it was given up on
);
`,
	// 11: an advisory may be in the capture stream twice, as the server
	// sent it and as the relay copied it; its id makes them one event.
	`
ALTER TABLE events ADD COLUMN advisory_id TEXT;
CREATE UNIQUE INDEX events_advisory ON events (advisory_id) WHERE advisory_id IS NOT NULL;
`,
	// 12: jetwatch's own streams and consumers are marked, so health, lag
	// and stall lists leave them out unless asked for.
	`
ALTER TABLE streams ADD COLUMN own INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consumers ADD COLUMN own INTEGER NOT NULL DEFAULT 0;
`,
	// 13: the overview at 10,000 streams and 100,000 consumers reads
	// small covering indexes instead of every row's JSON: its counts,
	// its triage (unwell streams and consumers) and each order of its
	// stream table.
	`
CREATE INDEX streams_overview ON streams (own, health, sampled_at, messages, bytes, name);
CREATE INDEX streams_by_rate ON streams (json_extract(data, '$.in_per_sec'), own, name);
CREATE INDEX streams_by_consumers ON streams (json_extract(data, '$.consumer_count'), own, name);
CREATE INDEX consumers_own ON consumers (own, stalled);
CREATE INDEX consumers_unwell ON consumers (own, health, num_pending) WHERE stalled = 1 OR health IN ('critical', 'warning');
`,
	// 14: samples are kept in time order. A cycle's samples then append to
	// the end of each table instead of landing one on every consumer's
	// page (with an hour of history, 100,000 consumers dirtied 100,000
	// pages a cycle), and compaction reads and deletes a range instead of
	// scanning every sample. sample_times lists the times samples were
	// taken at, so one stream's or consumer's history is a lookup per time.
	`
CREATE TABLE sample_times (
	ts  INTEGER NOT NULL,
	res INTEGER NOT NULL,
	PRIMARY KEY (ts, res)
) WITHOUT ROWID;

CREATE TABLE stream_samples_by_time (
	stream    TEXT NOT NULL,
	res       INTEGER NOT NULL,
	ts        INTEGER NOT NULL,
	messages  INTEGER NOT NULL,
	bytes     INTEGER NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	deleted   INTEGER NOT NULL,
	consumers INTEGER NOT NULL,
	PRIMARY KEY (res, ts, stream)
) WITHOUT ROWID;
INSERT INTO stream_samples_by_time SELECT * FROM stream_samples ORDER BY res, ts, stream;
DROP TABLE stream_samples;
ALTER TABLE stream_samples_by_time RENAME TO stream_samples;

CREATE TABLE consumer_samples_by_time (
	stream          TEXT NOT NULL,
	consumer        TEXT NOT NULL,
	res             INTEGER NOT NULL,
	ts              INTEGER NOT NULL,
	num_pending     INTEGER NOT NULL,
	num_ack_pending INTEGER NOT NULL,
	num_redelivered INTEGER NOT NULL,
	num_waiting     INTEGER NOT NULL,
	delivered_seq   INTEGER NOT NULL,
	ack_floor_seq   INTEGER NOT NULL,
	PRIMARY KEY (res, ts, stream, consumer)
) WITHOUT ROWID;
INSERT INTO consumer_samples_by_time SELECT * FROM consumer_samples ORDER BY res, ts, stream, consumer;
DROP TABLE consumer_samples;
ALTER TABLE consumer_samples_by_time RENAME TO consumer_samples;

INSERT OR IGNORE INTO sample_times (ts, res)
	SELECT DISTINCT ts, res FROM stream_samples UNION SELECT DISTINCT ts, res FROM consumer_samples;
`,

	// ---- journeys (issue 14): one block, to renumber easily on a merge ----
	// 15: the journey index: metadata of the messages of --journey-streams,
	// never payloads: one row per message and correlation value it
	// carries (one row with key '' when it carries only a trace id). Rows
	// are trimmed a batch at a time (journey_batches holds each batch's
	// row range and newest message), so retention needs no index on time.
	// dead_letter_keys holds the same keys of each dead letter, so a
	// journey finds its dead letters.
	`
CREATE TABLE journey_entries (
	stream   TEXT NOT NULL,
	seq      INTEGER NOT NULL, -- stream sequence
	subject  TEXT NOT NULL,
	at       INTEGER NOT NULL, -- unix ms the message was stored
	size     INTEGER NOT NULL,
	trace_id TEXT NOT NULL,
	name     TEXT NOT NULL,    -- the correlation name, '' for none
	key      TEXT NOT NULL     -- the correlation value, '' for none
);
CREATE INDEX journey_entries_key ON journey_entries (key, at) WHERE key != '';
CREATE INDEX journey_entries_trace ON journey_entries (trace_id, at) WHERE trace_id != '';
CREATE INDEX journey_entries_subject ON journey_entries (subject, at);
CREATE TABLE journey_batches (
	first_row INTEGER PRIMARY KEY,
	last_row  INTEGER NOT NULL,
	rows      INTEGER NOT NULL,
	newest    INTEGER NOT NULL -- unix ms of the batch's newest message
);
CREATE TABLE dead_letter_keys (
	key            TEXT NOT NULL,
	dead_letter_id INTEGER NOT NULL,
	PRIMARY KEY (key, dead_letter_id)
) WITHOUT ROWID;
`,
	// ---- end of journeys ----

	// ---- packed consumer history (issue 13): one block, to renumber easily on a merge ----
	// 16: a consumer's samples are packed with its stream's, up to
	// consumerSamplesPerRow consumers a row: {"name": [num_pending,
	// num_ack_pending, num_redelivered, num_waiting, delivered_seq,
	// ack_floor_seq], ...}. At 10,000 streams x 10 consumers a cycle
	// writes 10,000 rows instead of 100,000 (half a second of the cycle's
	// CPU and most of its writes). A stream's first row has first = '';
	// each further row, the name of its first consumer, so a consumer's
	// numbers are in the row with the greatest first <= its name.
	// Downsampled buckets hold a stream's consumers in one row.
	`
CREATE TABLE consumer_samples_packed (
	res       INTEGER NOT NULL,
	ts        INTEGER NOT NULL,
	stream    TEXT NOT NULL,
	first     TEXT NOT NULL, -- '' for a stream's first row, else its first consumer's name
	consumers TEXT NOT NULL, -- JSON object: consumer name -> its six numbers
	PRIMARY KEY (res, ts, stream, first)
) WITHOUT ROWID;
INSERT INTO consumer_samples_packed (res, ts, stream, first, consumers)
	SELECT res, ts, stream, '', json_group_object(consumer, json_array(num_pending, num_ack_pending,
		num_redelivered, num_waiting, delivered_seq, ack_floor_seq))
	FROM consumer_samples GROUP BY res, ts, stream;
DROP TABLE consumer_samples;
ALTER TABLE consumer_samples_packed RENAME TO consumer_samples;
`,
	// ---- end of packed consumer history ----
	// ---- dead letters of more accounts (issue 15) ----
	// 17: an audit entry names the account of the dead letter it acted
	// on ('' for the main account's): ids restart in each account.
	`ALTER TABLE audit ADD COLUMN account TEXT NOT NULL DEFAULT '';`,
	// ---- end of dead letters of more accounts ----

	// ---- consumer settings apart (issue 13) ----
	// 18: a consumer's settings (the fields of Consumer up to push, which
	// change only with its config or when it is created again) and its
	// config are kept apart from its state, which every cycle rewrites:
	// at 100,000 consumers, rewriting them too wrote about 150 MB a cycle
	// to the write-ahead log, and copied it again at the checkpoint.
	// settings_hash and config_hash are the hashes of the settings and
	// config last written (NULL: not known), so that a cycle finds them
	// unchanged without reading them. A consumer's settings go with it
	// (the trigger).
	`
CREATE TABLE consumer_settings (
	stream TEXT NOT NULL,
	name   TEXT NOT NULL,
	data   TEXT NOT NULL, -- JSON of the settings part of Consumer
	config TEXT NOT NULL, -- the server's JSON of the consumer config
	PRIMARY KEY (stream, name)
);
INSERT INTO consumer_settings (stream, name, data, config)
	SELECT stream, name, json_remove(data, '$.push_bound', '$.num_pending', '$.num_ack_pending', '$.num_redelivered',
		'$.num_waiting', '$.delivered', '$.ack_floor', '$.paused', '$.pause_until', '$.delivered_per_sec', '$.acked_per_sec',
		'$.stalled', '$.stalled_since', '$.cluster', '$.health', '$.sampled_at', '$.config', '$.server_time', '$.own',
		'$.unread', '$.lag_state', '$.arrival_per_second', '$.ack_per_second', '$.drain_seconds', '$.lag_window_seconds',
		'$.deleted_at'), config
	FROM consumers;
UPDATE consumers SET data = json_remove(data, '$.stream', '$.name', '$.description', '$.durable', '$.created',
	'$.filter_subjects', '$.deliver_policy', '$.ack_policy', '$.replay_policy', '$.max_deliver', '$.ack_wait_seconds',
	'$.backoff_seconds', '$.max_ack_pending', '$.push');
ALTER TABLE consumers DROP COLUMN config;
ALTER TABLE consumers ADD COLUMN settings_hash INTEGER;
ALTER TABLE consumers ADD COLUMN config_hash INTEGER;
CREATE TRIGGER consumer_settings_go_with_it AFTER DELETE ON consumers BEGIN
	DELETE FROM consumer_settings WHERE stream = old.stream AND name = old.name;
END;
`,
	// ---- end of consumer settings apart ----

	// ---- stream sort columns (issue 13) ----
	// 19: the stream table's orders by rate and by consumers read columns
	// instead of indexes on json_extract of each row's JSON: those parsed
	// the old and the new JSON of every stream a cycle, for each of the
	// two indexes (about 0.15 s of a cycle at 10,000 streams). The columns
	// hold what the expressions gave, NULL included.
	`
ALTER TABLE streams ADD COLUMN in_per_sec REAL;
ALTER TABLE streams ADD COLUMN consumer_count INTEGER;
UPDATE streams SET in_per_sec = json_extract(data, '$.in_per_sec'), consumer_count = json_extract(data, '$.consumer_count');
DROP INDEX streams_by_rate;
DROP INDEX streams_by_consumers;
CREATE INDEX streams_by_rate ON streams (in_per_sec, own, name);
CREATE INDEX streams_by_consumers ON streams (consumer_count, own, name);
`,
	// ---- end of stream sort columns ----

	// ---- triage in index order (issue 13) ----
	// 20: the overview's unwell streams and consumers and its largest
	// backlogs are read in the order of an index, so that the first page
	// costs the same however many are unwell. The old indexes left the
	// order to a sort of every match: when all 100,000 consumers of a
	// 10,000 x 10 system stalled, or had the same backlog, one render
	// sorted 100,000 rows for 50 (about 0.3 s). Ties go by stream and
	// name. own comes last: a page without jetwatch's own skips them
	// in the index.
	`
DROP INDEX consumers_pending;
CREATE INDEX consumers_pending ON consumers (num_pending DESC, stream, name, own) WHERE num_pending > 0;
DROP INDEX consumers_unwell;
CREATE INDEX consumers_unwell ON consumers (health = 'critical' DESC, num_pending DESC, stream, name, own)
	WHERE stalled = 1 OR health IN ('critical', 'warning');
CREATE INDEX streams_unwell ON streams (health = 'critical' DESC, name, own) WHERE health IN ('critical', 'warning');
`,
	// ---- end of triage in index order ----

	// 21: advisory_counts counted every stored advisory by kind, stream
	// and consumer, and nothing read it: a row for every consumer ever
	// created (ephemeral ones included, a new name each), never removed.
	`
DROP TABLE advisory_counts;
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
