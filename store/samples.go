package store

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// SaveCycle stores one sampling cycle in a single transaction: the latest
// state of every stream, consumer and server, one raw sample each, and the
// removal of streams and consumers the cycle proved gone. A cycle that could
// not list everything removes nothing.
func (db *DB) SaveCycle(ctx context.Context, c Cycle) error {
	// Through the driver directly: database/sql's bookkeeping of each of
	// 110,000 statements (its argument slice, locking, a result) was a
	// tenth of a 10,000 x 10 cycle's CPU and of its allocation.
	return db.withRawTx(ctx, func(tx *rawTx) error { return saveCycle(ctx, tx, c) })
}

func saveCycle(ctx context.Context, tx *rawTx, c Cycle) error {
	at := c.At.UnixMilli()
	// Rows are written without ctx's cancellation: with it, the driver
	// runs each statement on a goroutine of its own to interrupt it (two
	// goroutine switches a row, 220,000 rows a cycle at 10,000 x 10).
	// ctx is checked every rowsPerCheck rows instead.
	rowsDone := 0
	stillWanted := func() error {
		rowsDone++
		if rowsDone%rowsPerCheck == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("save cycle: %w", err)
			}
		}
		return nil
	}

	// An unread stream keeps the config last read (?8); so does a
	// consumer (keepConfig, below).
	upStream, err := tx.Prepare(`
		INSERT INTO streams (name, sampled_at, messages, bytes, health, data, config, own, in_per_sec, consumer_count)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?10, ?11)
		ON CONFLICT (name) DO UPDATE SET sampled_at = excluded.sampled_at,
			messages = excluded.messages, bytes = excluded.bytes,
			health = excluded.health, data = excluded.data, own = excluded.own,
			in_per_sec = excluded.in_per_sec, consumer_count = excluded.consumer_count,
			config = CASE WHEN ?8 THEN config ELSE excluded.config END`)
	if err != nil {
		return fmt.Errorf("save cycle: %w", err)
	}
	defer upStream.Close()
	insStream, err := tx.Prepare(`
		INSERT OR REPLACE INTO stream_samples
			(stream, res, ts, messages, bytes, first_seq, last_seq, deleted, consumers)
		VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("save cycle: %w", err)
	}
	defer insStream.Close()
	err = encodeRows(c.Streams, func(s *Stream) *json.RawMessage { return &s.Config }, appendStreamRow,
		func(s *Stream) string { return "stream " + s.Name }, func(i int, row encodedRow) error {
			s := &c.Streams[i]
			if err := stillWanted(); err != nil {
				return err
			}
			if err := upStream.Exec(s.Name, at, int64(s.Messages), int64(s.Bytes), s.Health.Level, row.data, row.config,
				s.Unread != nil, s.Own, s.InPerSec, s.ConsumerCount); err != nil {
				return fmt.Errorf("save stream %s: %w", s.Name, err)
			}
			if s.Unread != nil {
				// Its numbers are old: history records only what was read.
				return nil
			}
			if err := insStream.Exec(s.Name, at, int64(s.Messages), int64(s.Bytes),
				int64(s.FirstSeq), int64(s.LastSeq), int64(s.NumDeleted), s.ConsumerCount); err != nil {
				return fmt.Errorf("save stream sample %s: %w", s.Name, err)
			}
			return nil
		})
	if err != nil {
		return err
	}

	// A consumer whose settings and config are those last written (their
	// hashes say so), and whose stalled and own are unchanged, has its
	// numbers and state updated, one statement that leaves the index on
	// own and stalled alone; most cycles, that is every consumer. A new
	// one, or one with any of those changed, is written whole.
	upState, err := tx.Prepare(`
		UPDATE consumers SET sampled_at = ?3, num_pending = ?4, num_ack_pending = ?5, health = ?7, data = ?8
		WHERE stream = ?1 AND name = ?2 AND stalled = ?6 AND own = ?9
			AND settings_hash = ?10 AND (?12 OR config_hash = ?11)`)
	if err != nil {
		return fmt.Errorf("save cycle: %w", err)
	}
	defer upState.Close()
	upConsumer, err := tx.Prepare(`
		INSERT INTO consumers (stream, name, sampled_at, num_pending, num_ack_pending, stalled, health, data, own,
			settings_hash, config_hash)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
		ON CONFLICT (stream, name) DO UPDATE SET sampled_at = excluded.sampled_at,
			num_pending = excluded.num_pending, num_ack_pending = excluded.num_ack_pending,
			stalled = excluded.stalled, health = excluded.health, data = excluded.data, own = excluded.own,
			settings_hash = excluded.settings_hash, config_hash = CASE WHEN ?12 THEN config_hash ELSE excluded.config_hash END`)
	if err != nil {
		return fmt.Errorf("save cycle: %w", err)
	}
	defer upConsumer.Close()
	upSettings, err := tx.Prepare(`
		INSERT INTO consumer_settings (stream, name, data, config) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (stream, name) DO UPDATE SET data = excluded.data,
			config = CASE WHEN ?5 THEN config ELSE excluded.config END`)
	if err != nil {
		return fmt.Errorf("save cycle: %w", err)
	}
	defer upSettings.Close()
	err = encodeRows(c.Consumers, func(cs *Consumer) *json.RawMessage { return &cs.Config }, appendConsumerParts,
		func(cs *Consumer) string { return "consumer " + cs.Stream + "/" + cs.Name }, func(i int, row encodedRow) error {
			cs := &c.Consumers[i]
			if err := stillWanted(); err != nil {
				return err
			}
			// A deleted consumer keeps its last config and records no
			// history; one read without a config keeps the stored one.
			keepConfig := cs.Unread != nil || cs.DeletedAt != nil || len(cs.Config) == 0
			settingsHash, configHash := int64(xxhash.Sum64(row.settings)), int64(xxhash.Sum64(row.config))
			n, err := upState.ExecCount(cs.Stream, cs.Name, at, int64(cs.NumPending), cs.NumAckPending,
				cs.Stalled, cs.Health.Level, row.data, cs.Own, settingsHash, configHash, keepConfig)
			if err != nil {
				return fmt.Errorf("save consumer %s/%s: %w", cs.Stream, cs.Name, err)
			}
			if n > 0 {
				return nil
			}
			if err := upConsumer.Exec(cs.Stream, cs.Name, at, int64(cs.NumPending), cs.NumAckPending,
				cs.Stalled, cs.Health.Level, row.data, cs.Own, settingsHash, configHash, keepConfig); err != nil {
				return fmt.Errorf("save consumer %s/%s: %w", cs.Stream, cs.Name, err)
			}
			if err := upSettings.Exec(cs.Stream, cs.Name, row.settings, row.config, keepConfig); err != nil {
				return fmt.Errorf("save consumer settings %s/%s: %w", cs.Stream, cs.Name, err)
			}
			return nil
		})
	if err != nil {
		return err
	}
	if err := saveConsumerSamples(ctx, tx, c.Consumers, at); err != nil {
		return err
	}

	if err := recordSampleTime(ctx, tx, at, 0); err != nil {
		return err
	}

	// Everything seen this cycle now carries sampled_at = at; older rows of
	// a completely listed scope are gone from JetStream.
	if c.StreamsComplete {
		// A stream's consumers are a range of their primary key: looked up
		// by the gone streams' names, rather than every consumer checked
		// against the streams (100,000 rows read each cycle).
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM consumers WHERE stream IN (SELECT name FROM streams WHERE sampled_at < ?)`, at); err != nil {
			return fmt.Errorf("remove consumers of deleted streams: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM streams WHERE sampled_at < ?`, at); err != nil {
			return fmt.Errorf("remove deleted streams: %w", err)
		}
	}
	if err := removeGoneConsumers(ctx, tx, c, at); err != nil {
		return err
	}

	if c.Servers != nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM servers`); err != nil {
			return fmt.Errorf("save servers: %w", err)
		}
		for i := range c.Servers {
			data, err := json.Marshal(&c.Servers[i])
			if err != nil {
				return fmt.Errorf("save server %s: %w", c.Servers[i].Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO servers (name, sampled_at, data) VALUES (?, ?, ?)`,
				c.Servers[i].Name, at, data); err != nil {
				return fmt.Errorf("save server %s: %w", c.Servers[i].Name, err)
			}
		}
	}
	return nil
}

// consumerSamplesPerRow is how many consumers' samples share a row of
// consumer_samples: a stream's consumers up to it in one row, a wider
// stream's in several, so that reading one consumer's history decodes
// at most this many consumers' numbers a sample.
const consumerSamplesPerRow = 32

// saveConsumerSamples stores the history point of every consumer read,
// packed by stream (see migration 16). A deleted consumer and one not
// read record no history.
func saveConsumerSamples(ctx context.Context, tx *rawTx, consumers []Consumer, at int64) error {
	ins, err := tx.Prepare(`
		INSERT OR REPLACE INTO consumer_samples (res, ts, stream, first, consumers) VALUES (0, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("save consumer samples: %w", err)
	}
	defer ins.Close()
	// The sampler lists each stream's consumers together and in name
	// order; another order is sorted first, as the rows' first names
	// need it (and then no two rows of a cycle share a key).
	order := make([]int32, 0, len(consumers))
	for i := range consumers {
		if consumers[i].Unread == nil && consumers[i].DeletedAt == nil {
			order = append(order, int32(i))
		}
	}
	byKey := func(a, b int32) int {
		return cmp.Or(strings.Compare(consumers[a].Stream, consumers[b].Stream), strings.Compare(consumers[a].Name, consumers[b].Name))
	}
	if !slices.IsSortedFunc(order, byKey) {
		slices.SortFunc(order, byKey)
	}
	var buf []byte
	for lo := 0; lo < len(order); {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("save consumer samples: %w", err)
		}
		stream := consumers[order[lo]].Stream
		first := ""
		if lo > 0 && consumers[order[lo-1]].Stream == stream {
			first = consumers[order[lo]].Name
		}
		buf = append(buf[:0], '{')
		hi := lo
		for ; hi < len(order) && hi-lo < consumerSamplesPerRow && consumers[order[hi]].Stream == stream; hi++ {
			cs := &consumers[order[hi]]
			if hi > lo {
				buf = append(buf, ',')
			}
			buf = appendString(buf, cs.Name)
			buf = append(buf, ':', '[')
			buf = strconv.AppendInt(buf, int64(cs.NumPending), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(cs.NumAckPending), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(cs.NumRedelivered), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(cs.NumWaiting), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(cs.Delivered.ConsumerSeq), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(cs.AckFloor.ConsumerSeq), 10)
			buf = append(buf, ']')
		}
		buf = append(buf, '}')
		// As text: SQLite's JSON functions read it as such.
		if err := ins.Exec(at, stream, first, string(buf)); err != nil {
			return fmt.Errorf("save consumer samples of %s: %w", stream, err)
		}
		lo = hi
	}
	return nil
}

// removeGoneConsumers removes the consumers of the cycle's completely
// listed streams that the cycle did not store: those are gone. Only
// streams holding more consumers than the cycle stored can have any
// (a cycle lists each consumer once), and counting each stream's rows
// reads the primary key alone, where finding the old rows reads all of
// them: 100,000 rows a cycle to delete, most cycles, none.
func removeGoneConsumers(ctx context.Context, tx *rawTx, c Cycle, at int64) error {
	if len(c.ConsumersComplete) == 0 {
		return nil
	}
	stored := make(map[string]int, len(c.ConsumersComplete))
	for i := range c.Consumers {
		if c.ConsumersComplete[c.Consumers[i].Stream] {
			stored[c.Consumers[i].Stream]++
		}
	}
	var stale []string
	err := tx.Query(`SELECT stream, COUNT(*) FROM consumers GROUP BY stream`, func(row []driver.Value) error {
		stream, _ := row[0].(string)
		n, ok := row[1].(int64)
		if !ok {
			return fmt.Errorf("count of %s is a %T", stream, row[1])
		}
		if c.ConsumersComplete[stream] && int(n) > stored[stream] {
			stale = append(stale, stream)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove deleted consumers: %w", err)
	}
	if len(stale) == 0 {
		return nil
	}
	names, err := json.Marshal(stale)
	if err != nil {
		return fmt.Errorf("remove deleted consumers: %w", err)
	}
	// One statement, each stream's consumers a range of the primary key:
	// a statement per stream cost 10,000 calls at 10,000 streams.
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM consumers WHERE rowid IN (
			SELECT c.rowid FROM json_each(?1) j CROSS JOIN consumers c ON c.stream = j.value
			WHERE c.sampled_at < ?2)`, names, at); err != nil {
		return fmt.Errorf("remove deleted consumers: %w", err)
	}
	return nil
}

// Streams returns the latest state of every stream, by name.
func (db *DB) Streams(ctx context.Context) ([]Stream, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT data FROM streams ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return scanJSON[Stream](rows, "list streams")
}

// Stream returns the latest state of one stream with its config, or ErrNotFound.
func (db *DB) Stream(ctx context.Context, name string) (Stream, error) {
	var s Stream
	err := scanOneJSON(db.sql.QueryRowContext(ctx, `SELECT data, config FROM streams WHERE name = ?`, name), &s, &s.Config)
	if err != nil {
		return s, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// Consumers returns the latest state of a stream's consumers, by name.
func (db *DB) Consumers(ctx context.Context, stream string) ([]Consumer, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+consumerColumns+` FROM `+consumersJoined+`
		WHERE c.stream = ? ORDER BY c.name`, stream)
	if err != nil {
		return nil, fmt.Errorf("list consumers of %s: %w", stream, err)
	}
	return scanConsumers(rows, "list consumers of "+stream)
}

// ConsumerNames returns the names of a stream's stored consumers, in
// order, read from the primary key alone: what a cycle out of time
// needs of the consumers it could not ask for, without decoding them.
func (db *DB) ConsumerNames(ctx context.Context, stream string) ([]string, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT name FROM consumers WHERE stream = ? ORDER BY name`, stream)
	if err != nil {
		return nil, fmt.Errorf("list consumer names of %s: %w", stream, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list consumer names of %s: %w", stream, err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list consumer names of %s: %w", stream, err)
	}
	return out, nil
}

// AllConsumers returns the latest state of every consumer, by stream and name.
func (db *DB) AllConsumers(ctx context.Context) ([]Consumer, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+consumerColumns+` FROM `+consumersJoined+` ORDER BY c.stream, c.name`)
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return scanConsumers(rows, "list consumers")
}

// Consumer returns the latest state of one consumer with its config, or ErrNotFound.
func (db *DB) Consumer(ctx context.Context, stream, name string) (Consumer, error) {
	var settings, state, config []byte
	var c Consumer
	err := db.sql.QueryRowContext(ctx, `SELECT `+consumerColumns+`, s.config FROM `+consumersJoined+`
		WHERE c.stream = ? AND c.name = ?`, stream, name).Scan(&c.Stream, &c.Name, &settings, &state, &config)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err == nil {
		err = decodeConsumer(&c, settings, state)
	}
	if err != nil {
		return c, fmt.Errorf("consumer %s/%s: %w", stream, name, err)
	}
	if len(config) > 0 {
		c.Config = json.RawMessage(config)
	}
	return c, nil
}

// topLaggingQuery chooses the consumers first, in the order of the
// partial index consumers_pending (however many share a backlog), so that
// only those returned are read and joined with their settings. ?1 is the
// limit, ?2 own.
const topLaggingQuery = `SELECT ` + consumerColumns + ` FROM (SELECT rowid AS id FROM consumers WHERE num_pending > 0 AND (?2 OR own = 0)
		ORDER BY num_pending DESC, stream, name LIMIT ?1) AS p
	CROSS JOIN consumers c ON c.rowid = p.id
	LEFT JOIN consumer_settings s ON s.stream = c.stream AND s.name = c.name
	ORDER BY c.num_pending DESC, c.stream, c.name`

// TopLagging returns up to limit consumers with the most pending
// messages; jetwatch's own only with own.
func (db *DB) TopLagging(ctx context.Context, limit int, own bool) ([]Consumer, error) {
	rows, err := db.sql.QueryContext(ctx, topLaggingQuery, limit, own)
	if err != nil {
		return nil, fmt.Errorf("top lagging consumers: %w", err)
	}
	return scanConsumers(rows, "top lagging consumers")
}

// Stalled returns the consumers the last sample found stalled; jetwatch's
// own only with own.
func (db *DB) Stalled(ctx context.Context, own bool) ([]Consumer, error) {
	rows, err := db.sql.QueryContext(ctx,
		`SELECT `+consumerColumns+` FROM `+consumersJoined+` WHERE c.stalled = 1 AND (? OR c.own = 0)
		ORDER BY c.num_pending DESC, c.stream, c.name`, own)
	if err != nil {
		return nil, fmt.Errorf("stalled consumers: %w", err)
	}
	return scanConsumers(rows, "stalled consumers")
}

// Counts are the sizes shown on the overview.
type Counts struct {
	Streams          int
	Consumers        int
	Messages         uint64
	Bytes            uint64
	StreamsByHealth  map[string]int
	ConsumersStalled int
	// OwnStreams is how many of jetwatch's own streams there are, counted
	// in the other numbers or not.
	OwnStreams int
}

// Counts sums the latest state; jetwatch's own streams and consumers only
// with own.
func (db *DB) Counts(ctx context.Context, own bool) (Counts, error) {
	c := Counts{StreamsByHealth: map[string]int{}}
	var msgs, bytes int64
	err := db.sql.QueryRowContext(ctx,
		`SELECT COUNT(*) FILTER (WHERE ?1 OR own = 0), COALESCE(SUM(messages) FILTER (WHERE ?1 OR own = 0), 0),
			COALESCE(SUM(bytes) FILTER (WHERE ?1 OR own = 0), 0), COUNT(*) FILTER (WHERE own = 1)
		FROM streams`, own).Scan(&c.Streams, &msgs, &bytes, &c.OwnStreams)
	if err != nil {
		return c, fmt.Errorf("count streams: %w", err)
	}
	c.Messages, c.Bytes = uint64(msgs), uint64(bytes)
	if err := db.sql.QueryRowContext(ctx,
		`SELECT COUNT(*), COALESCE(SUM(stalled), 0) FROM consumers WHERE ? OR own = 0`, own).Scan(&c.Consumers, &c.ConsumersStalled); err != nil {
		return c, fmt.Errorf("count consumers: %w", err)
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT health, COUNT(*) FROM streams WHERE ? OR own = 0 GROUP BY health`, own)
	if err != nil {
		return c, fmt.Errorf("count stream health: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var level string
		var n int
		if err := rows.Scan(&level, &n); err != nil {
			return c, fmt.Errorf("count stream health: %w", err)
		}
		c.StreamsByHealth[level] = n
	}
	return c, rows.Err()
}

// Servers returns the latest JetStream health of every server seen by JSZ.
func (db *DB) Servers(ctx context.Context) ([]Server, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT data FROM servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return scanJSON[Server](rows, "list servers")
}

func scanJSON[T any](rows *sql.Rows, what string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("%s: decode row: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// consumerColumns are what decodeConsumer needs of a consumer's rows
// (consumersJoined): its stream, name, settings and state. A consumer
// whose settings are missing (they are written with it, and removed
// with it by a trigger) is still listed, with its state.
const (
	consumerColumns = `c.stream, c.name, COALESCE(s.data, '{}'), c.data`
	consumersJoined = `consumers c LEFT JOIN consumer_settings s ON s.stream = c.stream AND s.name = c.name`
)

// decodeConsumer decodes a consumer's settings and state into c, whose
// stream and name are those of its row.
func decodeConsumer(c *Consumer, settings, state []byte) error {
	stream, name := c.Stream, c.Name
	if err := json.Unmarshal(settings, c); err != nil {
		return fmt.Errorf("decode settings: %w", err)
	}
	if err := json.Unmarshal(state, c); err != nil {
		return fmt.Errorf("decode row: %w", err)
	}
	c.Stream, c.Name = stream, name
	return nil
}

// scanConsumers decodes rows of consumerColumns, scanning any columns
// after them into extra.
func scanConsumers(rows *sql.Rows, what string, extra ...any) ([]Consumer, error) {
	defer rows.Close()
	var out []Consumer
	var stream, name string
	var settings, state []byte
	dest := append([]any{&stream, &name, &settings, &state}, extra...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		c := Consumer{Stream: stream, Name: name}
		if err := decodeConsumer(&c, settings, state); err != nil {
			return nil, fmt.Errorf("%s: %s/%s: %w", what, c.Stream, c.Name, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// scanOneJSON decodes a row of (data, config) into v and its config field.
func scanOneJSON(row *sql.Row, v any, config *json.RawMessage) error {
	var data, cfg []byte
	if err := row.Scan(&data, &cfg); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode row: %w", err)
	}
	if len(cfg) > 0 {
		*config = json.RawMessage(cfg)
	}
	return nil
}

// rowsPerCheck is how many rows SaveCycle writes between two looks at
// its context: a few milliseconds' worth.
const rowsPerCheck = 1000

// encodedRow is a stream's or consumer's row: its JSON without its
// config, and its config. A consumer's JSON is in two parts: its
// settings and its state (data).
type encodedRow struct{ settings, data, config []byte }

// rowEncoder appends an item's JSON to b, its config left out; split is
// where in the result its data starts: past the settings it appended
// first, if any.
type rowEncoder[T any] func(b []byte, item *T) (out []byte, split int, err error)

// encodeBatch is how many rows are encoded at once, and encodeAhead how
// many batches may wait encoded for the writer (per core).
const (
	encodeBatch = 512
	encodeAhead = 2
)

// encodeRows encodes items on every core while use stores them: use is
// called with each row in order, on the calling goroutine, and must not
// keep the row's bytes after it returns (they are reused). Encoding costs
// no database time and runs beside the writer, a few batches ahead of
// it, so that 100,000 rows (100 MB of JSON) are never held at once.
// encode appends an item's JSON, its config left out.
func encodeRows[T any](items []T, configOf func(*T) *json.RawMessage, encode rowEncoder[T],
	nameOf func(*T) string, use func(i int, row encodedRow) error) error {
	type batch struct {
		rows []encodedRow
		buf  []byte
		err  error
	}
	n := (len(items) + encodeBatch - 1) / encodeBatch
	workers := max(runtime.GOMAXPROCS(0), 1)
	slots := make(chan struct{}, workers*encodeAhead)
	buffers := make(chan []byte, workers*encodeAhead+1)
	done := make(chan struct{})
	defer close(done)
	results := make([]chan batch, n)
	for b := range results {
		results[b] = make(chan batch, 1)
	}
	go func() {
		for b := range n {
			select {
			case slots <- struct{}{}:
			case <-done:
				return
			}
			go func() {
				var buf []byte
				select {
				case buf = <-buffers:
				default:
				}
				lo, hi := b*encodeBatch, min((b+1)*encodeBatch, len(items))
				rows, buf, err := encodeInto(buf[:0], items[lo:hi], configOf, encode, nameOf)
				results[b] <- batch{rows: rows, buf: buf, err: err}
			}()
		}
	}()
	for b := range n {
		res := <-results[b]
		<-slots
		if res.err != nil {
			return res.err
		}
		for j, row := range res.rows {
			if err := use(b*encodeBatch+j, row); err != nil {
				return err
			}
		}
		select {
		case buffers <- res.buf:
		default:
		}
	}
	return nil
}

// encodeInto encodes items into one buffer, each row's data a slice of it.
func encodeInto[T any](buf []byte, items []T, configOf func(*T) *json.RawMessage, encode rowEncoder[T],
	nameOf func(*T) string) ([]encodedRow, []byte, error) {
	ends := make([]int, len(items))
	splits := make([]int, len(items))
	configs := make([][]byte, len(items))
	for i := range items {
		// The encoders leave the config out; items are not written (a
		// copy of each, to clear its config, was 55 MB of garbage a
		// cycle at 10,000 x 10).
		item := &items[i]
		configs[i] = *configOf(item)
		if len(configs[i]) == 0 {
			configs[i] = emptyConfig
		}
		var err error
		if buf, splits[i], err = encode(buf, item); err != nil {
			return nil, buf, fmt.Errorf("save %s: %w", nameOf(item), err)
		}
		ends[i] = len(buf)
	}
	rows := make([]encodedRow, len(items))
	start := 0
	for i, end := range ends {
		split := splits[i]
		rows[i] = encodedRow{settings: buf[start:split:split], data: buf[split:end:end], config: configs[i]}
		start = end
	}
	return rows, buf, nil
}

// appendConsumerParts appends a consumer's settings and then its state.
func appendConsumerParts(b []byte, c *Consumer) ([]byte, int, error) {
	b, err := appendConsumerSettingsJSON(b, c)
	if err != nil {
		return b, 0, err
	}
	split := len(b)
	b, err = appendConsumerStateJSON(b, c, false)
	return b, split, err
}

var emptyConfig = []byte("{}")

// recordSampleTime lists ts among the times samples of resolution res
// were taken at, which history queries look samples up by.
func recordSampleTime(ctx context.Context, tx execer, ts, res int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO sample_times (ts, res) VALUES (?, ?)`, ts, res); err != nil {
		return fmt.Errorf("record sample time: %w", err)
	}
	return nil
}

// History is read one sample time after another (CROSS JOIN keeps
// sample_times the outer loop): samples are stored in time order, so a
// stream's or consumer's samples are one key lookup per time, where a
// range of times would read every stream's and consumer's samples.

// StreamHistory returns a stream's history since the given time, in at most
// about points buckets.
func (db *DB) StreamHistory(ctx context.Context, stream string, since, until time.Time, points int) ([]StreamPoint, error) {
	bucket := bucketMillis(since, until, points)
	rows, err := db.sql.QueryContext(ctx, `
		SELECT MAX(s.ts), MAX(s.messages), MAX(s.bytes), MAX(s.last_seq)
		FROM sample_times t CROSS JOIN stream_samples s ON s.res = t.res AND s.ts = t.ts AND s.stream = ?2
		WHERE t.ts >= ?3 AND t.ts <= ?4
		GROUP BY s.ts / ?1 ORDER BY 1`, bucket, stream, since.UnixMilli(), until.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("history of stream %s: %w", stream, err)
	}
	defer rows.Close()
	var out []StreamPoint
	for rows.Next() {
		var b, msgs, bytes, last int64
		if err := rows.Scan(&b, &msgs, &bytes, &last); err != nil {
			return nil, fmt.Errorf("history of stream %s: %w", stream, err)
		}
		out = append(out, StreamPoint{At: time.UnixMilli(b).UTC(), Messages: uint64(msgs), Bytes: uint64(bytes), LastSeq: uint64(last)})
	}
	return out, rows.Err()
}

// ConsumerHistory returns a consumer's history since the given time, in at
// most about points buckets.
func (db *DB) ConsumerHistory(ctx context.Context, stream, consumer string, since, until time.Time, points int) ([]ConsumerPoint, error) {
	bucket := bucketMillis(since, until, points)
	// Each sample time, the one row of the stream's that holds the
	// consumer: the one with the greatest first name up to its own.
	rows, err := db.sql.QueryContext(ctx, `
		SELECT MAX(s.ts), MAX(j.value ->> 0), MAX(j.value ->> 1), MAX(j.value ->> 2),
			MAX(j.value ->> 3), MAX(j.value ->> 4), MAX(j.value ->> 5)
		FROM sample_times t CROSS JOIN consumer_samples s
			ON s.res = t.res AND s.ts = t.ts AND s.stream = ?2 AND s.first = (
				SELECT MAX(x.first) FROM consumer_samples x
				WHERE x.res = t.res AND x.ts = t.ts AND x.stream = ?2 AND x.first <= ?3)
			CROSS JOIN json_each(s.consumers) j
		WHERE t.ts >= ?4 AND t.ts <= ?5 AND j.key = ?3
		GROUP BY s.ts / ?1 ORDER BY 1`, bucket, stream, consumer, since.UnixMilli(), until.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("history of consumer %s/%s: %w", stream, consumer, err)
	}
	defer rows.Close()
	var out []ConsumerPoint
	for rows.Next() {
		var b, p, ap, rd, w, ds, af int64
		if err := rows.Scan(&b, &p, &ap, &rd, &w, &ds, &af); err != nil {
			return nil, fmt.Errorf("history of consumer %s/%s: %w", stream, consumer, err)
		}
		out = append(out, ConsumerPoint{At: time.UnixMilli(b).UTC(), NumPending: uint64(p), NumAckPending: uint64(ap),
			NumRedelivered: uint64(rd), NumWaiting: uint64(w), DeliveredSeq: uint64(ds), AckFloorSeq: uint64(af)})
	}
	return out, rows.Err()
}

// PendingSparklines returns the num_pending history of every consumer of a
// stream, keyed by consumer name, in one query.
func (db *DB) PendingSparklines(ctx context.Context, stream string, since, until time.Time, points int) (map[string][]uint64, error) {
	bucket := bucketMillis(since, until, points)
	rows, err := db.sql.QueryContext(ctx, `
		SELECT j.key, MAX(s.ts), MAX(j.value ->> 0)
		FROM sample_times t CROSS JOIN consumer_samples s ON s.res = t.res AND s.ts = t.ts AND s.stream = ?2
			CROSS JOIN json_each(s.consumers) j
		WHERE t.ts >= ?3 AND t.ts <= ?4
		GROUP BY j.key, s.ts / ?1 ORDER BY j.key, 2`, bucket, stream, since.UnixMilli(), until.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sparklines of %s: %w", stream, err)
	}
	defer rows.Close()
	out := map[string][]uint64{}
	for rows.Next() {
		var name string
		var b, p int64
		if err := rows.Scan(&name, &b, &p); err != nil {
			return nil, fmt.Errorf("sparklines of %s: %w", stream, err)
		}
		out[name] = append(out[name], uint64(p))
	}
	return out, rows.Err()
}

func bucketMillis(since, until time.Time, points int) int64 {
	if points < 1 {
		points = 1
	}
	b := until.Sub(since).Milliseconds() / int64(points)
	return max(b, 1000)
}
