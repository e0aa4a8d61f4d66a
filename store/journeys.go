package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// JourneyTraceName is what journeys call a message's trace id;
// correlation values carry their configured name.
const JourneyTraceName = "trace"

// JourneyEntry is one message of a journey stream under one correlation
// value it carries (Name and Key empty when it carries only a trace id):
// metadata only, never the payload.
type JourneyEntry struct {
	Stream  string
	Seq     uint64
	Subject string
	At      time.Time
	Size    int
	TraceID string
	Name    string
	Key     string
}

// InsertJourneyEntries stores the entries of a batch of stream messages
// and moves the position named positionKey to last, in one transaction
// (with no positionKey, it stores them all and keeps no position).
// Entries at or before the stored position (another replica, or a rerun,
// got there first) are skipped. The batch's rows are recorded as one
// range, which the trim deletes whole once its newest message is old.
func (db *DB) InsertJourneyEntries(ctx context.Context, positionKey string, last uint64, entries []JourneyEntry) error {
	err := db.withRawTx(ctx, func(tx *rawTx) error {
		// Without a position (a live tap of a work queue), every entry
		// is new.
		var pos uint64
		if positionKey != "" {
			var err error
			if pos, err = positionRaw(tx, positionKey); err != nil {
				return err
			}
			if last <= pos {
				return nil
			}
		}
		var first, lastRow, n int64
		var newest time.Time
		if len(entries) > 0 {
			ins, err := tx.Prepare(`INSERT INTO journey_entries (stream, seq, subject, at, size, trace_id, name, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return fmt.Errorf("index journeys: %w", err)
			}
			defer ins.Close()
			for i := range entries {
				e := &entries[i]
				if positionKey != "" && e.Seq <= pos {
					continue
				}
				id, err := ins.ExecID(e.Stream, e.Seq, e.Subject, e.At.UnixMilli(), e.Size, e.TraceID, e.Name, e.Key)
				if err != nil {
					return fmt.Errorf("index journeys: %s seq %d: %w", e.Stream, e.Seq, err)
				}
				if n == 0 {
					first = id
				}
				lastRow = id
				n++
				if e.At.After(newest) {
					newest = e.At
				}
			}
		}
		if n > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO journey_batches (first_row, last_row, rows, newest) VALUES (?, ?, ?, ?)`,
				first, lastRow, n, newest.UnixMilli()); err != nil {
				return fmt.Errorf("index journeys: %w", err)
			}
		}
		if positionKey == "" {
			return nil
		}
		return setPosition(ctx, tx, positionKey, last)
	})
	if err != nil {
		return fmt.Errorf("index journeys: %w", err)
	}
	return nil
}

// JourneyTrim is what a trim of the journey index deleted.
type JourneyTrim struct {
	Rows    int64
	Batches int64
}

// TrimJourneys deletes the batches whose newest message is older than
// before, then the oldest batches while more than maxRows rows are kept
// (0: no cap). At most limit batches go per call, so a trim never holds
// the database for long; call again while it deletes some.
func (db *DB) TrimJourneys(ctx context.Context, before time.Time, maxRows int64, limit int) (JourneyTrim, error) {
	limit = max(limit, 1)
	type batch struct{ first, last, rows int64 }
	// Only the trim deletes batches, so those read here are still there
	// when the transaction below deletes them.
	read := func(query string, args ...any) ([]batch, error) {
		rows, err := db.sql.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []batch
		for rows.Next() {
			var b batch
			if err := rows.Scan(&b.first, &b.last, &b.rows); err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, rows.Err()
	}
	doomed, err := read(`SELECT first_row, last_row, rows FROM journey_batches WHERE newest < ? LIMIT ?`, before.UnixMilli(), limit)
	if err != nil {
		return JourneyTrim{}, fmt.Errorf("trim journeys: %w", err)
	}
	if maxRows > 0 && len(doomed) < limit {
		var total int64
		if err := db.sql.QueryRowContext(ctx, `SELECT COALESCE(SUM(rows), 0) FROM journey_batches WHERE newest >= ?`,
			before.UnixMilli()).Scan(&total); err != nil {
			return JourneyTrim{}, fmt.Errorf("trim journeys: %w", err)
		}
		if total > maxRows {
			over, err := read(`SELECT first_row, last_row, rows FROM journey_batches WHERE newest >= ? ORDER BY first_row LIMIT ?`,
				before.UnixMilli(), limit-len(doomed))
			if err != nil {
				return JourneyTrim{}, fmt.Errorf("trim journeys: %w", err)
			}
			for _, b := range over {
				if total <= maxRows {
					break
				}
				doomed = append(doomed, b)
				total -= b.rows
			}
		}
	}
	var out JourneyTrim
	if len(doomed) == 0 {
		return out, nil
	}
	err = db.withRawTx(ctx, func(tx *rawTx) error {
		for _, b := range doomed {
			res, err := tx.ExecContext(ctx, `DELETE FROM journey_entries WHERE rowid BETWEEN ? AND ?`, b.first, b.last)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			out.Rows += n
			if _, err := tx.ExecContext(ctx, `DELETE FROM journey_batches WHERE first_row = ?`, b.first); err != nil {
				return err
			}
			out.Batches++
		}
		return nil
	})
	if err != nil {
		return JourneyTrim{}, fmt.Errorf("trim journeys: %w", err)
	}
	return out, nil
}

// JourneyRowCount is how many rows the journey index holds.
func (db *DB) JourneyRowCount(ctx context.Context) (int64, error) {
	var n int64
	if err := db.sql.QueryRowContext(ctx, `SELECT COALESCE(SUM(rows), 0) FROM journey_batches`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count journey rows: %w", err)
	}
	return n, nil
}

// ForgetPosition deletes the stored position named name: the stream it
// followed is gone, and one made again under its name starts at 1.
func (db *DB) ForgetPosition(ctx context.Context, name string) error {
	if _, err := db.sql.ExecContext(ctx, `DELETE FROM stream_positions WHERE name = ?`, name); err != nil {
		return fmt.Errorf("forget position %s: %w", name, err)
	}
	return nil
}

// JourneyMessage is one message of a journey.
type JourneyMessage struct {
	Stream  string    `json:"stream"`
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	At      time.Time `json:"time"`
	Size    int       `json:"size"`
	TraceID string    `json:"trace_id,omitempty"`
	// Keys are the names under which the message carries the key asked
	// for ("trace", "order").
	Keys []string `json:"matched_by"`
}

// JourneyMessages returns the messages carrying key as their trace id
// or a correlation value, oldest first, at most limit.
func (db *DB) JourneyMessages(ctx context.Context, key string, limit int) ([]JourneyMessage, error) {
	out := []JourneyMessage{}
	if key == "" {
		return out, nil
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT * FROM (
		SELECT name, stream, seq, subject, at, size, trace_id FROM journey_entries WHERE key = ?1 AND key != ''
		UNION ALL
		SELECT '`+JourneyTraceName+`', stream, seq, subject, at, size, trace_id FROM journey_entries WHERE trace_id = ?1 AND trace_id != '')
		ORDER BY at, stream, seq LIMIT ?2`, key, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("journey %q: %w", key, err)
	}
	defer rows.Close()
	type id struct {
		stream string
		seq    uint64
	}
	at := map[id]int{}
	for rows.Next() {
		var m JourneyMessage
		var name string
		var ms int64
		if err := rows.Scan(&name, &m.Stream, &m.Seq, &m.Subject, &ms, &m.Size, &m.TraceID); err != nil {
			return nil, fmt.Errorf("journey %q: %w", key, err)
		}
		// A message with several correlation values has a row for each,
		// all with its trace id; and one may carry key under two names:
		// it is one step of the journey.
		// Sequence 0 is unknown (a work queue followed live): each such
		// row is its own message.
		if i, ok := at[id{m.Stream, m.Seq}]; ok && m.Seq != 0 {
			if !slices.Contains(out[i].Keys, name) {
				out[i].Keys = append(out[i].Keys, name)
			}
			continue
		}
		m.At, m.Keys = time.UnixMilli(ms).UTC(), []string{name}
		at[id{m.Stream, m.Seq}] = len(out)
		out = append(out, m)
	}
	return out, rows.Err()
}

// JourneyDeadLetter is a dead letter carrying a journey's key.
type JourneyDeadLetter struct {
	ID        uint64    `json:"id"`
	Stream    string    `json:"stream"`
	Consumer  string    `json:"consumer"`
	Subject   string    `json:"subject"`
	StreamSeq uint64    `json:"stream_seq"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	Service   string    `json:"service,omitempty"`
	Status    string    `json:"status"`
	FailedAt  time.Time `json:"failed_at"`
}

// JourneyAction is an operator's action on a dead letter of a journey.
type JourneyAction struct {
	DeadLetter uint64    `json:"dead_letter"`
	Action     string    `json:"action"`
	Actor      string    `json:"actor"`
	At         time.Time `json:"at"`
	Subject    string    `json:"subject,omitempty"`
	AckStream  string    `json:"ack_stream,omitempty"`
	AckSeq     uint64    `json:"ack_seq,omitempty"`
}

// JourneyDeadLetters returns the dead letters indexed under key, at most
// limit, and the actions taken on them, each oldest first.
func (db *DB) JourneyDeadLetters(ctx context.Context, key string, limit int) ([]JourneyDeadLetter, []JourneyAction, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT d.id, d.stream, d.consumer, d.subject, d.stream_seq, d.reason, d.error,
		d.service, d.status, d.failed_at FROM dead_letter_keys k JOIN dead_letters d ON d.id = k.dead_letter_id
		WHERE k.key = ? ORDER BY d.failed_at, d.id LIMIT ?`, key, max(limit, 1))
	if err != nil {
		return nil, nil, fmt.Errorf("journey %q dead letters: %w", key, err)
	}
	defer rows.Close()
	letters := []JourneyDeadLetter{}
	var ids []any
	for rows.Next() {
		var d JourneyDeadLetter
		var at int64
		if err := rows.Scan(&d.ID, &d.Stream, &d.Consumer, &d.Subject, &d.StreamSeq, &d.Reason, &d.Error,
			&d.Service, &d.Status, &at); err != nil {
			return nil, nil, fmt.Errorf("journey %q dead letters: %w", key, err)
		}
		d.FailedAt = time.UnixMilli(at).UTC()
		letters = append(letters, d)
		ids = append(ids, d.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("journey %q dead letters: %w", key, err)
	}
	actions := []JourneyAction{}
	if len(ids) == 0 {
		return letters, actions, nil
	}
	arows, err := db.sql.QueryContext(ctx, `SELECT dead_letter_id, action, actor, at,
		COALESCE(json_extract(detail, '$.subject'), ''), COALESCE(json_extract(detail, '$.ack_stream'), ''),
		COALESCE(json_extract(detail, '$.ack_seq'), 0)
		FROM dead_letter_actions WHERE dead_letter_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY seq`, ids...)
	if err != nil {
		return nil, nil, fmt.Errorf("journey %q actions: %w", key, err)
	}
	defer arows.Close()
	for arows.Next() {
		var a JourneyAction
		var at int64
		if err := arows.Scan(&a.DeadLetter, &a.Action, &a.Actor, &at, &a.Subject, &a.AckStream, &a.AckSeq); err != nil {
			return nil, nil, fmt.Errorf("journey %q actions: %w", key, err)
		}
		a.At = time.UnixMilli(at).UTC()
		actions = append(actions, a)
	}
	return letters, actions, arows.Err()
}

// JourneyBreakerChange is a transition of a breaker bound to a stream.
type JourneyBreakerChange struct {
	BreakerTransition
	Stream   string `json:"stream"`
	Consumer string `json:"consumer,omitempty"`
}

// BreakerChangesOn returns the transitions, from from to to, of the
// breakers bound to one of streams, oldest first, at most limit.
func (db *DB) BreakerChangesOn(ctx context.Context, streams []string, from, to time.Time, limit int) ([]JourneyBreakerChange, error) {
	out := []JourneyBreakerChange{}
	if len(streams) == 0 {
		return out, nil
	}
	args := []any{from.UnixMilli(), to.UnixMilli()}
	for _, s := range streams {
		args = append(args, s)
	}
	args = append(args, max(limit, 1))
	rows, err := db.sql.QueryContext(ctx, `SELECT t.service, t.breaker, t.from_state, t.to_state, t.at,
		COALESCE(json_extract(b.data, '$.stream'), ''), COALESCE(json_extract(b.data, '$.consumer'), '')
		FROM breaker_transitions t JOIN breakers b ON b.service = t.service AND b.breaker = t.breaker
		WHERE t.at BETWEEN ? AND ? AND json_extract(b.data, '$.stream') IN (?`+strings.Repeat(", ?", len(streams)-1)+`)
		ORDER BY t.at, t.id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("breaker changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c JourneyBreakerChange
		var at int64
		if err := rows.Scan(&c.Service, &c.Breaker, &c.From, &c.To, &at, &c.Stream, &c.Consumer); err != nil {
			return nil, fmt.Errorf("breaker changes: %w", err)
		}
		c.At = time.UnixMilli(at).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// StuckJourneyQuery asks for journeys that started and did not end.
type StuckJourneyQuery struct {
	// Name is the correlation name the journeys are keyed by.
	Name string
	// Start is the subject that starts a journey; End the subjects that
	// end one.
	Start string
	End   []string
	// StartedBefore: journeys younger than this are not stuck yet.
	StartedBefore time.Time
	// StartedAfter bounds how far back starts are looked for.
	StartedAfter time.Time
	// Limit is how many are returned at most, the oldest first.
	Limit int
}

// StuckJourney is a journey that saw its start subject and none of its
// end subjects.
type StuckJourney struct {
	Key     string    `json:"key"`
	Started time.Time `json:"started"`
	Stream  string    `json:"stream"`
	Seq     uint64    `json:"seq"`
	// LastSubject and LastAt are the journey's latest step.
	LastSubject string    `json:"last_subject"`
	LastAt      time.Time `json:"last_at"`
}

// StuckJourneys lists the journeys of q, oldest start first.
func (db *DB) StuckJourneys(ctx context.Context, q StuckJourneyQuery) ([]StuckJourney, error) {
	out := []StuckJourney{}
	if q.Start == "" || len(q.End) == 0 {
		return out, nil
	}
	args := []any{q.Start, q.StartedAfter.UnixMilli(), q.StartedBefore.UnixMilli(), q.Name}
	for _, e := range q.End {
		args = append(args, e)
	}
	args = append(args, max(q.Limit, 1))
	// The start rows come off the (subject, at) index; each key's end is
	// looked for through the (key, at) index.
	rows, err := db.sql.QueryContext(ctx, `SELECT s.key, MIN(s.at), s.stream, s.seq,
		(SELECT l.subject FROM journey_entries l WHERE l.key = s.key AND l.name = s.name ORDER BY l.at DESC LIMIT 1),
		(SELECT MAX(l.at) FROM journey_entries l WHERE l.key = s.key AND l.name = s.name)
		FROM journey_entries s
		WHERE s.subject = ? AND s.at >= ? AND s.at <= ? AND s.name = ?
		AND NOT EXISTS (SELECT 1 FROM journey_entries e WHERE e.key = s.key AND e.name = s.name
			AND e.subject IN (?`+strings.Repeat(", ?", len(q.End)-1)+`))
		GROUP BY s.key ORDER BY MIN(s.at), s.key LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("stuck journeys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j StuckJourney
		var started, last int64
		if err := rows.Scan(&j.Key, &started, &j.Stream, &j.Seq, &j.LastSubject, &last); err != nil {
			return nil, fmt.Errorf("stuck journeys: %w", err)
		}
		j.Started, j.LastAt = time.UnixMilli(started).UTC(), time.UnixMilli(last).UTC()
		out = append(out, j)
	}
	return out, rows.Err()
}
