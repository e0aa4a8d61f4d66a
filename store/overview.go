package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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
// overlap. The rank of health mirrors web's levelRank; StreamKeyOf and
// CompareStreamKeys mirror each order in Go.
var streamOrder = map[string]string{
	SortHealth:    `CASE WHEN sampled_at < :stale THEN 1 WHEN health = 'critical' THEN 3 WHEN health = 'warning' THEN 2 ELSE 0 END DESC, name`,
	SortName:      `name`,
	SortMessages:  `messages DESC, name`,
	SortBytes:     `bytes DESC, name`,
	SortRate:      `in_per_sec DESC, name`,
	SortConsumers: `consumer_count DESC, name`,
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
	where, args := streamWhere(q)
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

// streamWhere is the WHERE of q's streams and its arguments, :stale
// (for the health order) among them.
func streamWhere(q StreamQuery) (string, []any) {
	where := ` WHERE (:own OR own = 0) AND (:search = '' OR name LIKE '%' || :search || '%' ESCAPE '\')`
	return where, []any{sql.Named("own", q.Own), sql.Named("search", likeEscape(q.Search)), sql.Named("stale", staleMilli(q.StaleBefore))}
}

// staleMilli is the :stale of staleBefore: 0 when it is zero, so only a
// stream sampled before 1970 ranks stale.
func staleMilli(staleBefore time.Time) int64 {
	if staleBefore.IsZero() {
		return 0
	}
	return staleBefore.UnixMilli()
}

// StreamKey is where a stream stands in one order of the stream table,
// without the stream: what merging jetwatch's own streams with other
// accounts' needs, read from the small columns instead of the JSON.
type StreamKey struct {
	Name string
	// Value is the order's first term, larger first: the health rank
	// (critical 3, warning 2, stale 1, ok 0), messages, bytes or the
	// consumer count as SQLite holds them; 0 for SortName and SortRate.
	Value int64
	// Rate is messages in per second, larger first, for SortRate.
	Rate float64
}

// StreamKeyResult is one window of stream keys and how many match in all.
type StreamKeyResult struct {
	Keys  []StreamKey
	Total int
}

// streamKeyTerms is what each order's first term reads as a StreamKey's
// Value and Rate: the expression its ORDER BY (streamOrder) begins with.
var streamKeyTerms = map[string]string{
	SortHealth:    `CASE WHEN sampled_at < :stale THEN 1 WHEN health = 'critical' THEN 3 WHEN health = 'warning' THEN 2 ELSE 0 END, 0`,
	SortName:      `0, 0`,
	SortMessages:  `messages, 0`,
	SortBytes:     `bytes, 0`,
	SortRate:      `0, in_per_sec`,
	SortConsumers: `consumer_count, 0`,
}

// QueryStreamKeys is QueryStreams's window of streams (same filters,
// order and Total) as keys: the name and the sort's first term, read
// from the columns and covering indexes of each order, no JSON decoded.
// CompareStreamKeys orders the keys as they come. An unknown sort is
// an error.
func (db *DB) QueryStreamKeys(ctx context.Context, q StreamQuery) (StreamKeyResult, error) {
	var res StreamKeyResult
	if q.Sort == "" {
		q.Sort = SortHealth
	}
	order, ok := streamOrder[q.Sort]
	if !ok {
		return res, fmt.Errorf("list stream keys: unknown order %q", q.Sort)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	where, args := streamWhere(q)
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM streams`+where, args...).Scan(&res.Total); err != nil {
		return res, fmt.Errorf("count streams: %w", err)
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT name, `+streamKeyTerms[q.Sort]+` FROM streams`+where+`
		ORDER BY `+order+` LIMIT :limit OFFSET :offset`,
		append(args, sql.Named("limit", q.Limit), sql.Named("offset", max(q.Offset, 0)))...)
	if err != nil {
		return res, fmt.Errorf("list stream keys: %w", err)
	}
	defer rows.Close()
	res.Keys = make([]StreamKey, 0, min(q.Limit, max(res.Total-max(q.Offset, 0), 0)))
	for rows.Next() {
		var k StreamKey
		// A JSON value that is missing is NULL, which SQLite orders
		// below every number: so does the smallest key.
		var value sql.NullInt64
		var rate sql.NullFloat64
		if err := rows.Scan(&k.Name, &value, &rate); err != nil {
			return res, fmt.Errorf("list stream keys: %w", err)
		}
		k.Value, k.Rate = value.Int64, rate.Float64
		if !value.Valid {
			k.Value = math.MinInt64
		}
		if !rate.Valid {
			k.Rate = math.Inf(-1)
		}
		res.Keys = append(res.Keys, k)
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("list stream keys: %w", err)
	}
	return res, nil
}

// StreamKeyOf is st's key in sort (SortHealth when empty or unknown), as
// QueryStreamKeys would read it had st been saved: messages and bytes
// as the signed integers SQLite holds, stale when sampled before
// staleBefore to the millisecond (zero: before 1970).
func StreamKeyOf(st *Stream, sort string, staleBefore time.Time) StreamKey {
	k := StreamKey{Name: st.Name}
	switch sort {
	case SortName:
	case SortMessages:
		k.Value = int64(st.Messages)
	case SortBytes:
		k.Value = int64(st.Bytes)
	case SortRate:
		k.Rate = st.InPerSec
	case SortConsumers:
		k.Value = int64(st.ConsumerCount)
	default:
		switch {
		case st.SampledAt.UnixMilli() < staleMilli(staleBefore):
			k.Value = 1
		case st.Health.Level == HealthCritical:
			k.Value = 3
		case st.Health.Level == HealthWarning:
			k.Value = 2
		}
	}
	return k
}

// CompareStreamKeys orders keys of one sort as QueryStreams orders
// streams: the first term larger first, then names bytewise (SQLite's
// BINARY collation).
func CompareStreamKeys(a, b StreamKey) int {
	return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(b.Rate, a.Rate), strings.Compare(a.Name, b.Name))
}

// StreamsNamed are the stored streams of names (without their config),
// read whole by name in one query: the rows a page of keys shows. A name
// no longer stored (a cycle removed it since) is left out.
func (db *DB) StreamsNamed(ctx context.Context, names []string) (map[string]Stream, error) {
	out := make(map[string]Stream, len(names))
	if len(names) == 0 {
		return out, nil
	}
	// A page's names in one query; more in as many as SQLite's bound
	// on parameters asks.
	for part := range slices.Chunk(names, 500) {
		args := make([]any, len(part))
		for i, n := range part {
			args[i] = n
		}
		rows, err := db.sql.QueryContext(ctx, `SELECT name, data FROM streams WHERE name IN (?`+strings.Repeat(", ?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read streams by name: %w", err)
		}
		if err := scanNamedStreams(rows, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanNamedStreams decodes rows of (name, data) into out by the name
// stored, which is the name asked for: JSON would have replaced bytes of
// a name that are not UTF-8.
func scanNamedStreams(rows *sql.Rows, out map[string]Stream) error {
	defer rows.Close()
	for rows.Next() {
		var name string
		var data []byte
		if err := rows.Scan(&name, &data); err != nil {
			return fmt.Errorf("read streams by name: %w", err)
		}
		var st Stream
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("read streams by name: decode %q: %w", name, err)
		}
		out[name] = st
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read streams by name: %w", err)
	}
	return nil
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

// The triage's queries: ?1 is own, ?2 the limit. Each kind is read in the
// order of its partial index, streams_unwell and consumers_unwell (whose
// WHERE the queries repeat word for word, so SQLite uses them), and
// counted from it by a subquery of the same statement, so that the count
// is of the same sample; only the rows returned are read whole.
const (
	unwellStreams      = `FROM streams WHERE health IN ('critical', 'warning') AND (?1 OR own = 0)`
	unwellStreamsQuery = `SELECT data, (SELECT COUNT(*) ` + unwellStreams + `)
		` + unwellStreams + ` ORDER BY health = 'critical' DESC, name LIMIT ?2`
	unwellConsumers      = `FROM consumers WHERE (stalled = 1 OR health IN ('critical', 'warning')) AND (?1 OR own = 0)`
	unwellConsumersQuery = `SELECT ` + consumerColumns + `, (SELECT COUNT(*) ` + unwellConsumers + `)
		FROM (SELECT rowid AS id ` + unwellConsumers + `
			ORDER BY health = 'critical' DESC, num_pending DESC, stream, name LIMIT ?2) AS p
		CROSS JOIN consumers c ON c.rowid = p.id
		LEFT JOIN consumer_settings s ON s.stream = c.stream AND s.name = c.name
		ORDER BY c.health = 'critical' DESC, c.num_pending DESC, c.stream, c.name`
)

// Unwell returns the streams and consumers the last sample judged
// critical or warning (consumers also when stalled), worst first, then by
// name; jetwatch's own only with own.
func (db *DB) Unwell(ctx context.Context, limit int, own bool) (Unwell, error) {
	var u Unwell
	var err error
	u.Streams, u.StreamTotal, err = pageJSON[Stream](ctx, db, "unwell streams", unwellStreamsQuery, own, limit)
	if err != nil {
		return u, err
	}
	rows, err := db.sql.QueryContext(ctx, unwellConsumersQuery, own, limit)
	if err != nil {
		return u, fmt.Errorf("unwell consumers: %w", err)
	}
	u.Consumers, err = scanConsumers(rows, "unwell consumers", &u.ConsumerTotal)
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
