package query

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// Queries runs the dashboard's reads over the index. Headers and payload
// are not in the index: Get reads them from the DLQ stream, their system
// of record.
type Queries struct {
	db     *store.DB
	js     jetstream.JetStream
	stream string

	mu     sync.Mutex
	handle jetstream.Stream // the DLQ stream, looked up once
}

// NewQueries returns queries over db, reading dead letters' messages from
// the stream named stream (DLQ when empty) through js. With js nil, Get
// fails: lists, counts and groups need only the index.
func New(db *store.DB, js jetstream.JetStream, stream string) *Queries {
	return &Queries{db: db, js: js, stream: cmp.Or(stream, "DLQ")}
}

// List returns up to limit dead letters matching f, newest first (the
// order they reached the DLQ), after cursor (a previous page's NextCursor).
func (q *Queries) List(ctx context.Context, f store.DeadLetterFilter, limit int, cursor string) (store.DeadLetterPage, error) {
	return q.db.ListDeadLetters(ctx, f, limit, cursor)
}

// Count returns how many dead letters match f.
func (q *Queries) Count(ctx context.Context, f store.DeadLetterFilter) (int, error) {
	return q.db.CountDeadLetters(ctx, f)
}

// CountUpTo counts the dead letters matching f, stopping at limit: pages
// show "10,000+" rather than wait for an exact count of a million.
func (q *Queries) CountUpTo(ctx context.Context, f store.DeadLetterFilter, limit int) (int, bool, error) {
	return q.db.CountDeadLettersUpTo(ctx, f, limit)
}

// MaxID is the newest dead letter's id, 0 when there is none.
func (q *Queries) MaxID(ctx context.Context) (uint64, error) { return q.db.MaxDeadLetterID(ctx) }

// Groups returns the dead letters matching f grouped by error
// fingerprint, largest first, with a trend over the last window in
// buckets.
func (q *Queries) Groups(ctx context.Context, f store.DeadLetterFilter, limit int, now time.Time, window time.Duration, buckets int) ([]store.DeadLetterGroup, error) {
	return q.db.DeadLetterGroups(ctx, f, limit, now, window, buckets)
}

// Get returns one dead letter with its headers and payload, or
// ErrNotFound. A dead letter whose message the DLQ stream no longer
// holds (removed by the stream's limits, or deleted) comes without them,
// marked payload unavailable with the reason. Failing to ask NATS is an
// error: nothing is shown as gone that may be there.
func (q *Queries) Get(ctx context.Context, id uint64) (store.DeadLetter, error) {
	d, err := q.db.DeadLetter(ctx, id)
	if err != nil {
		return d, err
	}
	if err := q.readMessage(ctx, &d); err != nil {
		return d, err
	}
	return d, nil
}

// markGone records that d's message is no longer in the DLQ stream.
func markGone(d *store.DeadLetter, why string) {
	d.Headers, d.Payload = map[string][]string{}, nil
	if d.PayloadAvailable {
		d.PayloadAvailable, d.UnavailableWhy = false, why
	} else {
		d.UnavailableWhy = strings.TrimSuffix(d.UnavailableWhy, ".") + "; " + why
	}
}

// GetMany returns the dead letters with these ids, with headers and
// payload, reading their messages together (see Get); unknown ids are
// absent from the map.
func (q *Queries) GetMany(ctx context.Context, ids []uint64) (map[uint64]store.DeadLetter, error) {
	return q.getMany(ctx, ids, true)
}

// GetManyIndexed returns the dead letters with these ids as the index
// holds them, without headers and payload (a discard needs neither);
// unknown ids are absent from the map.
func (q *Queries) GetManyIndexed(ctx context.Context, ids []uint64) (map[uint64]store.DeadLetter, error) {
	return q.getMany(ctx, ids, false)
}

// getMany returns the dead letters with these ids, with headers and
// payload when withMessages; unknown ids are absent from the map.
func (q *Queries) getMany(ctx context.Context, ids []uint64, withMessages bool) (map[uint64]store.DeadLetter, error) {
	letters, err := q.db.DeadLettersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	if withMessages {
		if err := q.readMessages(ctx, letters); err != nil {
			return nil, err
		}
	}
	out := make(map[uint64]store.DeadLetter, len(letters))
	for _, d := range letters {
		out[d.ID] = d
	}
	return out, nil
}

// History returns what was done to a dead letter, oldest first. The start
// of a redelivery is left out once it ended; one that did not end (under
// way, or interrupted) shows.
func (q *Queries) History(ctx context.Context, id uint64) ([]dlq.Action, error) {
	details, err := q.db.DeadLetterActionDetails(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []dlq.Action{}
	for _, detail := range details {
		var a dlq.Action
		if err := json.Unmarshal(detail, &a); err != nil {
			return nil, fmt.Errorf("history of %d: %w", id, err)
		}
		if n := len(out); n > 0 && out[n-1].Action == dlq.ActionRedeliverStart {
			out = out[:n-1] // it ended with this record
		}
		out = append(out, a)
	}
	return out, nil
}
