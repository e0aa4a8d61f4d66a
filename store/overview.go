package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Stream orders of the overview's table. Each has the direction an
// operator wants first: the worst, the biggest, the busiest; names A to Z.
const (
	SortHealth    = "health" // worst first: critical, warning, stale, ok
	SortName      = "name"
	SortMessages  = "messages"
	SortBytes     = "bytes"
	SortRate      = "rate" // messages in per second
	SortConsumers = "consumers"
)

// StreamSorts are the orders QueryStreams takes, the default first.
var StreamSorts = []string{SortHealth, SortName, SortMessages, SortBytes, SortRate, SortConsumers}

// MaxStreamSearch bounds the search text of a StreamQuery: stream names
// are at most 255 bytes.
const MaxStreamSearch = 255

// StreamQuery selects one page of the stream table.
type StreamQuery struct {
	// Own lists jetwatch's own streams too.
	Own bool
	// Search keeps the streams whose name contains it, ignoring ASCII case.
	Search string
	// Sort is one of StreamSorts. Defaults to SortHealth.
	Sort string
	// StaleBefore ranks streams sampled before it as stale (below
	// warning, above ok), as the pages show them. Zero ranks none stale.
	StaleBefore time.Time
	// Offset and Limit pick the page. Limit defaults to 50.
	Offset, Limit int
}

// StreamResult is one page of streams and how many match in all.
type StreamResult struct {
	Streams []Stream
	Total   int
}

// streamOrder is each sort's ORDER BY; name breaks ties, so pages never
// overlap. The rank of health mirrors web's levelRank.
var streamOrder = map[string]string{
	SortHealth:    `CASE WHEN sampled_at < :stale THEN 1 WHEN health = 'critical' THEN 3 WHEN health = 'warning' THEN 2 ELSE 0 END DESC, name`,
	SortName:      `name`,
	SortMessages:  `messages DESC, name`,
	SortBytes:     `bytes DESC, name`,
	SortRate:      `json_extract(data, '$.in_per_sec') DESC, name`,
	SortConsumers: `json_extract(data, '$.consumer_count') DESC, name`,
}

// QueryStreams returns one page of streams, filtered and sorted in SQLite:
// with 10,000 streams only the page's rows are decoded. An unknown sort
// is an error.
func (db *DB) QueryStreams(ctx context.Context, q StreamQuery) (StreamResult, error) {
	var res StreamResult
	if q.Sort == "" {
		q.Sort = SortHealth
	}
	order, ok := streamOrder[q.Sort]
	if !ok {
		return res, fmt.Errorf("list streams: unknown order %q", q.Sort)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	where := ` WHERE (:own OR own = 0) AND (:search = '' OR name LIKE '%' || :search || '%' ESCAPE '\')`
	stale := q.StaleBefore.UnixMilli()
	if q.StaleBefore.IsZero() {
		stale = 0
	}
	args := []any{sql.Named("own", q.Own), sql.Named("search", likeEscape(q.Search)), sql.Named("stale", stale)}
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM streams`+where, args...).Scan(&res.Total); err != nil {
		return res, fmt.Errorf("count streams: %w", err)
	}
	// The page is chosen on the small columns, then only its rows' JSON
	// is read: sorting 10,000 rows with their data costs ten times more.
	rows, err := db.sql.QueryContext(ctx, `
		SELECT s.data FROM (SELECT rowid AS id, row_number() OVER (ORDER BY `+order+`) AS pos FROM streams`+where+`
			ORDER BY `+order+` LIMIT :limit OFFSET :offset) AS p
		CROSS JOIN streams s ON s.rowid = p.id ORDER BY p.pos`,
		append(args, sql.Named("limit", q.Limit), sql.Named("offset", max(q.Offset, 0)))...)
	if err != nil {
		return res, fmt.Errorf("list streams: %w", err)
	}
	res.Streams, err = scanJSON[Stream](rows, "list streams")
	return res, err
}

// likeEscape makes s match itself in a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Unwell is what the last sample found wrong with streams and consumers,
// worst first, for the overview's triage: at most limit of each kind, and
// how many there are in all.
type Unwell struct {
	// Streams are critical or warning, unread ones included.
	Streams     []Stream
	StreamTotal int
	// Consumers are critical (unread ones included), warning or stalled.
	Consumers     []Consumer
	ConsumerTotal int
}

// Unwell returns the streams and consumers the last sample judged
// critical or warning (consumers also when stalled); jetwatch's own
// only with own. They are found in the small covering indexes
// streams_overview and consumers_unwell (whose WHERE the query repeats
// word for word, so SQLite uses it), counted in the same pass, and only
// the rows returned are read whole.
func (db *DB) Unwell(ctx context.Context, limit int, own bool) (Unwell, error) {
	var u Unwell
	var err error
	u.Streams, u.StreamTotal, err = pageJSON[Stream](ctx, db, "unwell streams", `SELECT s.data, p.total FROM (SELECT rowid AS id,
			row_number() OVER (ORDER BY health = 'critical' DESC, name) AS pos, COUNT(*) OVER () AS total
		FROM streams WHERE health IN ('critical', 'warning') AND (?1 OR own = 0) ORDER BY pos LIMIT ?2) AS p
		CROSS JOIN streams s ON s.rowid = p.id ORDER BY p.pos`, own, limit)
	if err != nil {
		return u, err
	}
	u.Consumers, u.ConsumerTotal, err = pageJSON[Consumer](ctx, db, "unwell consumers", `SELECT c.data, p.total FROM (SELECT rowid AS id,
			row_number() OVER (ORDER BY health = 'critical' DESC, num_pending DESC, rowid) AS pos, COUNT(*) OVER () AS total
		FROM consumers WHERE (stalled = 1 OR health IN ('critical', 'warning')) AND (?1 OR own = 0) ORDER BY pos LIMIT ?2) AS p
		CROSS JOIN consumers c ON c.rowid = p.id ORDER BY p.pos`, own, limit)
	return u, err
}

// pageJSON runs a query of (data, total) rows: JSON to decode, and how
// many rows match in all (0 when none is returned).
func pageJSON[T any](ctx context.Context, db *DB, what, query string, args ...any) ([]T, int, error) {
	rows, err := db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	total := 0
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data, &total); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", what, err)
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, 0, fmt.Errorf("%s: decode row: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	return out, total, nil
}

// DeadLetterArrivals counts the dead letters that failed in each of
// buckets equal slices of since..until, oldest first.
func (db *DB) DeadLetterArrivals(ctx context.Context, since, until time.Time, buckets int) ([]int, error) {
	buckets = max(buckets, 1)
	out := make([]int, buckets)
	width := max(until.Sub(since).Milliseconds()/int64(buckets), 1)
	rows, err := db.sql.QueryContext(ctx, `SELECT (failed_at - ?1) / ?2, COUNT(*) FROM dead_letters
		WHERE failed_at >= ?1 AND failed_at < ?3 GROUP BY 1`, since.UnixMilli(), width, until.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("dead letter arrivals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var n int
		if err := rows.Scan(&b, &n); err != nil {
			return nil, fmt.Errorf("dead letter arrivals: %w", err)
		}
		if b >= 0 && b < int64(buckets) {
			out[b] += n
		}
	}
	return out, rows.Err()
}
