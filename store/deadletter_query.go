package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/internal/natsname"
)

// Statuses of a dead letter.
const (
	StatusPending     = "pending"
	StatusRedelivered = "redelivered"
	StatusDiscarded   = "discarded"
	// StatusRedelivering is a dead letter whose redelivery started and
	// has not ended: under way, or interrupted by a crash (redelivering it
	// again finishes it without sending twice).
	StatusRedelivering = "redelivering"
)

// ErrBadFilter wraps problems with a filter the operator gave.
var ErrBadFilter = errors.New("bad filter")

// FilterError is a problem with one field of a filter; it is an
// ErrBadFilter.
type FilterError struct {
	// Field is the filter's field as requests name it (subject, reason, q).
	Field string
	// Problem says what is wrong and what to do, naming the field.
	Problem string
}

func (e *FilterError) Error() string { return ErrBadFilter.Error() + ": " + e.Problem }
func (e *FilterError) Unwrap() error { return ErrBadFilter }

func filterError(field, format string, args ...any) error {
	return &FilterError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// DeadLetterFilter selects dead letters; zero fields match everything.
type DeadLetterFilter struct {
	Stream   string    `json:"stream,omitempty"`
	Consumer string    `json:"consumer,omitempty"`
	Subject  string    `json:"subject,omitempty"` // NATS wildcards allowed
	Reason   string    `json:"reason,omitempty"`
	Status   string    `json:"status,omitempty"`
	Q        string    `json:"q,omitempty"` // full-text search over subject, error and payload
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
	// IDs, when given, selects these dead letters only (a selection).
	IDs []uint64 `json:"ids,omitempty"`
	// MaxID bounds a bulk job to the dead letters that existed when it was
	// created.
	MaxID uint64 `json:"max_id,omitempty"`
	// PayloadsHidden keeps Q from matching payload text, for whoever may
	// not see payloads (a viewer under --hide-payloads): otherwise a
	// search for a card number would tell which dead letters hold it. Set
	// by the server from the searcher's role, never read from a client.
	PayloadsHidden bool `json:"-"`
	// OldestFirst lists oldest first (by DLQ sequence: the order they
	// failed in), as a bulk job redelivers them, so that messages of one
	// key go back in the order they came. Set by the bulk runner, never
	// read from a client.
	OldestFirst bool `json:"-"`
}

// equal says whether two filters select the same way.
func (f DeadLetterFilter) equal(o DeadLetterFilter) bool {
	return f.Stream == o.Stream && f.Consumer == o.Consumer && f.Subject == o.Subject && f.Reason == o.Reason &&
		f.Status == o.Status && f.Q == o.Q && f.Since.Equal(o.Since) && f.Until.Equal(o.Until) &&
		slices.Equal(f.IDs, o.IDs) && f.MaxID == o.MaxID && f.PayloadsHidden == o.PayloadsHidden && f.OldestFirst == o.OldestFirst
}

// MaxSearchBytes and MaxSearchTerms bound a full-text search: each term is
// one more index lookup in the query, and a search of thousands of terms
// once cost half a minute of CPU.
const (
	MaxSearchBytes = 512
	MaxSearchTerms = 16
)

// Validate checks the filter's closed vocabularies, syntax and sizes.
func (f DeadLetterFilter) Validate() error {
	if len(f.Q) > MaxSearchBytes {
		return filterError("q", "q is %d bytes: search with at most %d", len(f.Q), MaxSearchBytes)
	}
	if n := len(searchTokens(f.Q)); n > MaxSearchTerms {
		return filterError("q", "q has %d words: search with at most %d (letters and digits make a word; anything else separates them)",
			n, MaxSearchTerms)
	}
	for _, v := range []struct{ name, value string }{{"stream", f.Stream}, {"consumer", f.Consumer}} {
		if len(v.value) > natsname.MaxNameLen {
			return filterError(v.name, "%s is %d bytes: NATS names are at most %d", v.name, len(v.value), natsname.MaxNameLen)
		}
	}
	if len(f.Subject) > natsname.MaxSubjectLen {
		return filterError("subject", "subject is %d bytes: subjects jetwatch handles are at most %d", len(f.Subject), natsname.MaxSubjectLen)
	}
	switch f.Reason {
	case "", deadletter.ReasonMaxDeliver, deadletter.ReasonTerminated, deadletter.ReasonError:
	default:
		return filterError("reason", "reason %q: use max_deliver, terminated or error", f.Reason)
	}
	switch f.Status {
	case "", StatusPending, StatusRedelivering, StatusRedelivered, StatusDiscarded:
	default:
		return filterError("status", "status %q: use pending, redelivering, redelivered or discarded", f.Status)
	}
	if f.Subject != "" {
		for i, tok := range strings.Split(f.Subject, ".") {
			if tok == "" || (tok == ">" && i != strings.Count(f.Subject, ".")) || strings.ContainsAny(tok, " \t") {
				return filterError("subject", "subject %q is not a valid NATS subject pattern", clipped(f.Subject))
			}
		}
	}
	if len(f.IDs) > 10000 {
		return filterError("ids", "select at most 10,000 dead letters, or use a filter")
	}
	for _, id := range f.IDs {
		if id == 0 || id > math.MaxInt64 {
			return filterError("ids", "selection: %d is not a dead letter id", id)
		}
	}
	if f.MaxID > math.MaxInt64 {
		return filterError("max_id", "max_id %d is not a dead letter id", f.MaxID)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return filterError("until", "until is before since")
	}
	return nil
}

// DeadLetter is one indexed dead letter.
type DeadLetter struct {
	ID               uint64    `json:"id"`
	Stream           string    `json:"stream"`
	Consumer         string    `json:"consumer"`
	Subject          string    `json:"subject"`
	StreamSeq        uint64    `json:"stream_seq"`
	Reason           string    `json:"reason"`
	Error            string    `json:"error"`
	Status           string    `json:"status"`
	Deliveries       uint64    `json:"deliveries"`
	FailedAt         time.Time `json:"failed_at"`
	PayloadAvailable bool      `json:"payload_available"`
	Service          string    `json:"service,omitempty"`
	Size             int       `json:"size"`
	Fingerprint      string    `json:"-"`
	// Only filled by DeadLetter and DeadLettersByID:
	UnavailableWhy string   `json:"payload_unavailable_reason,omitempty"`
	Problems       []string `json:"problems,omitempty"`
	// Read from the DLQ stream by dlq, never stored here:
	Headers    map[string][]string `json:"headers,omitempty"`
	Payload    []byte              `json:"payload,omitempty"`
	DLQSubject string              `json:"dlq_subject,omitempty"`
	IndexedAt  time.Time           `json:"indexed_at,omitzero"`
}

// DeadLetterPage is one page of a listing, newest first.
type DeadLetterPage struct {
	Items      []DeadLetter `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

const listColumns = `d.id, d.stream, d.consumer, d.subject, d.stream_seq, d.reason, d.error, d.status, d.deliveries,
	d.failed_at, d.payload_available, d.service, d.size, d.fingerprint`

// where builds the WHERE clause and arguments for f.
func (f DeadLetterFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(c string, a ...any) {
		conds = append(conds, c)
		args = append(args, a...)
	}
	if f.Stream != "" {
		add("d.stream = ?", f.Stream)
	}
	if f.Consumer != "" {
		add("d.consumer = ?", f.Consumer)
	}
	if f.Subject != "" {
		if strings.ContainsAny(f.Subject, "*>") {
			add(subjectWildcard(f.Subject))
		} else {
			add("d.subject = ?", f.Subject)
		}
	}
	if f.Reason != "" {
		add("d.reason = ?", f.Reason)
	}
	switch f.Status {
	case "":
	case StatusPending:
		// An interrupted redelivery still needs an operator (or its
		// bulk job) to finish it.
		add("d.status IN (?, ?)", StatusPending, StatusRedelivering)
	default:
		add("d.status = ?", f.Status)
	}
	if !f.Since.IsZero() {
		add("d.failed_at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("d.failed_at <= ?", f.Until.UnixMilli())
	}
	if f.MaxID > 0 {
		add("d.id <= ?", f.MaxID)
	}
	if len(f.IDs) > 0 {
		args := make([]any, len(f.IDs))
		for i, id := range f.IDs {
			args[i] = id
		}
		add("d.id IN ("+marks(len(f.IDs))+")", args...)
	}
	if fq := ftsQuery(f.Q); fq != "" {
		add("dead_letters_fts MATCH ?", fq)
		if f.PayloadsHidden {
			// The index keeps no columns (detail=none), so it cannot
			// leave the payload out: of what it found, keep the dead
			// letters whose subject and error hold every term.
			add("search_terms_in(?, d.subject || ' ' || d.error)", f.Q)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// subjectWildcard is the condition for a subject pattern with wildcards.
// GLOB narrows in C (and through the subject index when the pattern starts
// with a literal), but its * also crosses dots. When every wildcard is a
// whole token, counting the subject's dots restores NATS semantics in C
// too: with as many dots as the pattern (or more, after a trailing >),
// each of the pattern's dots takes one of the subject's and leaves none
// for a * to swallow. A * before a trailing >, or a * inside a token (a
// literal to NATS), needs subject_matches, a Go call per row.
func subjectWildcard(pattern string) (string, any, any) {
	tokens := strings.Split(pattern, ".")
	dots := len(tokens) - 1
	star, tail := false, tokens[dots] == ">"
	for _, t := range tokens {
		switch {
		case t == "*":
			star = true
		case t != ">" && strings.ContainsAny(t, "*>"):
			star, tail = true, true // forces the Go call
		}
	}
	const subjectDots = "length(d.subject) - length(replace(d.subject, '.', ''))"
	switch {
	case !tail:
		return "d.subject GLOB ? AND " + subjectDots + " = ?", natsGlob(pattern), dots
	case !star:
		return "d.subject GLOB ? AND " + subjectDots + " >= ?", natsGlob(pattern), dots
	default:
		return "d.subject GLOB ? AND subject_matches(?, d.subject)", natsGlob(pattern), pattern
	}
}

// natsGlob turns a NATS subject pattern into a GLOB that matches at least
// what it matches: * and > both become *, GLOB's own specials are escaped.
func natsGlob(pattern string) string {
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*', '>':
			b.WriteByte('*')
		case '?', '[', ']':
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteByte(']')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// from is the FROM clause for f. A search drives the query from the
// full-text index, which hands out matches newest first without
// collecting them all.
func (f DeadLetterFilter) from() string {
	if ftsQuery(f.Q) != "" {
		return " FROM dead_letters_fts JOIN dead_letters d ON d.id = dead_letters_fts.rowid"
	}
	return " FROM dead_letters d"
}

// order is the ORDER BY for listing f newest first (oldest first with
// OldestFirst): by DLQ sequence, which is the order dead letters arrived
// in.
func (f DeadLetterFilter) order() string {
	dir := " DESC"
	if f.OldestFirst {
		dir = ""
	}
	if ftsQuery(f.Q) != "" {
		return " ORDER BY dead_letters_fts.rowid" + dir
	}
	return " ORDER BY d.id" + dir
}

// ftsQuery turns what an operator types into an FTS5 query: every token
// (letters and digits, as the index splits them) must appear, the last one
// as a prefix. Punctuation only separates, so nothing typed is ever an FTS5
// syntax error, and no phrase is asked of an index that keeps no positions.
func ftsQuery(q string) string {
	tokens := searchTokens(q)
	for i, t := range tokens {
		tokens[i] = `"` + t + `"`
	}
	if n := len(tokens); n > 0 {
		tokens[n-1] += "*"
	}
	return strings.Join(tokens, " ")
}

// parseCursor reads a cursor List gave out: a dead letter id.
func parseCursor(cursor string) (uint64, error) {
	before, err := strconv.ParseUint(cursor, 10, 64)
	if err != nil || before > math.MaxInt64 {
		return 0, filterError("cursor", "cursor %q is not one this server gave out", clipped(cursor))
	}
	return before, nil
}

// ListDeadLetters returns up to limit dead letters matching f, newest first (the
// order they reached the DLQ), after cursor (a previous page's NextCursor).
func (db *DB) ListDeadLetters(ctx context.Context, f DeadLetterFilter, limit int, cursor string) (DeadLetterPage, error) {
	if err := f.Validate(); err != nil {
		return DeadLetterPage{}, err
	}
	limit = min(max(limit, 1), 500)
	where, args := f.where()
	if cursor != "" {
		before, err := parseCursor(cursor)
		if err != nil {
			return DeadLetterPage{}, err
		}
		cond := "d.id < ?"
		if f.OldestFirst {
			cond = "d.id > ?"
		}
		if where == "" {
			where = " WHERE " + cond
		} else {
			where += " AND " + cond
		}
		args = append(args, before)
	}
	from := f.from()
	if f.Q == "" && strings.ContainsAny(f.Subject, "*>") {
		// A wildcard that matches many dead letters is fastest walking
		// them newest first until the page is full; the subject index
		// would collect and sort every match. One that matches few is
		// fastest through the index. A capped count tells which.
		if _, many, err := db.CountDeadLettersUpTo(ctx, f, 20*limit); err != nil {
			return DeadLetterPage{}, err
		} else if many {
			from = " FROM dead_letters d NOT INDEXED"
		}
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT `+listColumns+from+where+f.order()+` LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return DeadLetterPage{}, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	p := DeadLetterPage{Items: []DeadLetter{}}
	for rows.Next() {
		d, err := scanListRow(rows)
		if err != nil {
			return DeadLetterPage{}, err
		}
		p.Items = append(p.Items, d)
	}
	if err := rows.Err(); err != nil {
		return DeadLetterPage{}, fmt.Errorf("list dead letters: %w", err)
	}
	if len(p.Items) > limit {
		p.Items = p.Items[:limit]
		last := p.Items[limit-1]
		p.NextCursor = strconv.FormatUint(last.ID, 10)
	}
	return p, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanListRow(r scanner) (DeadLetter, error) {
	var d DeadLetter
	var failed int64
	if err := r.Scan(&d.ID, &d.Stream, &d.Consumer, &d.Subject, &d.StreamSeq, &d.Reason, &d.Error, &d.Status,
		&d.Deliveries, &failed, &d.PayloadAvailable, &d.Service, &d.Size, &d.Fingerprint); err != nil {
		return d, fmt.Errorf("read dead letter: %w", err)
	}
	d.FailedAt = time.UnixMilli(failed).UTC()
	return d, nil
}

// CountDeadLetters returns how many dead letters match f.
func (db *DB) CountDeadLetters(ctx context.Context, f DeadLetterFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	where, args := f.where()
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*)`+f.from()+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// CountDeadLettersUpTo counts the dead letters matching f, stopping at limit: pages
// show "10,000+" rather than wait for an exact count of a million.
func (db *DB) CountDeadLettersUpTo(ctx context.Context, f DeadLetterFilter, limit int) (int, bool, error) {
	if err := f.Validate(); err != nil {
		return 0, false, err
	}
	where, args := f.where()
	from := f.from()
	if fq := ftsQuery(f.Q); fq != "" && (DeadLetterFilter{Q: f.Q}).equal(f) {
		// Every dead letter has one full-text row: a search alone counts
		// there, without looking each match up.
		from, where, args = " FROM dead_letters_fts", " WHERE dead_letters_fts MATCH ?", []any{fq}
	}
	var n int
	err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1`+from+where+` LIMIT ?)`,
		append(args, limit+1)...).Scan(&n)
	if err != nil {
		return 0, false, fmt.Errorf("count dead letters: %w", err)
	}
	if n > limit {
		return limit, true, nil
	}
	return n, false, nil
}

// MaxDeadLetterID is the newest dead letter's id, 0 when there is none.
func (db *DB) MaxDeadLetterID(ctx context.Context) (uint64, error) {
	var id sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, `SELECT MAX(id) FROM dead_letters`).Scan(&id); err != nil {
		return 0, fmt.Errorf("newest dead letter: %w", err)
	}
	return uint64(id.Int64), nil
}

const detailColumns = listColumns + `, d.unavailable_why, d.problems, d.dlq_subject, d.indexed_at`

// DeadLetter returns one dead letter's row, or ErrNotFound.
func (db *DB) DeadLetter(ctx context.Context, id uint64) (DeadLetter, error) {
	d, err := scanDetail(db.sql.QueryRowContext(ctx, `SELECT `+detailColumns+` FROM dead_letters d WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("dead letter %d: %w", id, err)
	}
	return d, nil
}

// DeadLettersByID returns the rows of the dead letters with these ids, in
// no order; unknown ids are left out.
func (db *DB) DeadLettersByID(ctx context.Context, ids []uint64) ([]DeadLetter, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT `+detailColumns+` FROM dead_letters d WHERE d.id IN (`+marks(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	defer rows.Close()
	var letters []DeadLetter
	for rows.Next() {
		d, err := scanDetail(rows)
		if err != nil {
			return nil, err
		}
		letters = append(letters, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return letters, nil
}

// marks is n comma-separated placeholders.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func scanDetail(r scanner) (DeadLetter, error) {
	var d DeadLetter
	var failed, indexed int64
	var problems string
	if err := r.Scan(&d.ID, &d.Stream, &d.Consumer, &d.Subject, &d.StreamSeq, &d.Reason, &d.Error, &d.Status,
		&d.Deliveries, &failed, &d.PayloadAvailable, &d.Service, &d.Size, &d.Fingerprint,
		&d.UnavailableWhy, &problems, &d.DLQSubject, &indexed); err != nil {
		return d, err
	}
	d.FailedAt = time.UnixMilli(failed).UTC()
	d.IndexedAt = time.UnixMilli(indexed).UTC()
	if err := json.Unmarshal([]byte(problems), &d.Problems); err != nil {
		return d, fmt.Errorf("dead letter %d problems: %w", d.ID, err)
	}
	return d, nil
}

// DeadLetterGroup is the dead letters sharing an error fingerprint.
type DeadLetterGroup struct {
	Fingerprint string    `json:"fingerprint"`
	Example     string    `json:"example"`
	Count       int       `json:"count"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	// Trend counts the group's dead letters per bucket over the window
	// given to DeadLetterGroups, oldest first.
	Trend []int `json:"trend"`
}

// DeadLetterGroups returns the dead letters matching f grouped by error
// fingerprint, largest first, with a trend over the last window in
// buckets.
func (db *DB) DeadLetterGroups(ctx context.Context, f DeadLetterFilter, limit int, now time.Time, window time.Duration, buckets int) ([]DeadLetterGroup, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	where, args := f.where()
	rows, err := db.sql.QueryContext(ctx, `SELECT d.fingerprint, MIN(d.error), COUNT(*), MIN(d.failed_at), MAX(d.failed_at)`+
		f.from()+where+` GROUP BY d.fingerprint ORDER BY COUNT(*) DESC LIMIT ?`, append(args, min(max(limit, 1), 200))...)
	if err != nil {
		return nil, fmt.Errorf("group dead letters: %w", err)
	}
	var groups []DeadLetterGroup
	index := map[string]int{}
	for rows.Next() {
		var g DeadLetterGroup
		var first, last int64
		if err := rows.Scan(&g.Fingerprint, &g.Example, &g.Count, &first, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("group dead letters: %w", err)
		}
		g.FirstSeen, g.LastSeen = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
		g.Trend = make([]int, buckets)
		index[g.Fingerprint] = len(groups)
		groups = append(groups, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("group dead letters: %w", err)
	}
	if len(groups) == 0 || buckets < 1 {
		return groups, nil
	}
	since := now.Add(-window)
	bucketMs := max(window.Milliseconds()/int64(buckets), 1)
	tf := f
	tf.Since = since
	where, args = tf.where()
	rows, err = db.sql.QueryContext(ctx, `SELECT d.fingerprint, (d.failed_at - ?) / ?, COUNT(*)`+tf.from()+where+
		` GROUP BY 1, 2`, append([]any{since.UnixMilli(), bucketMs}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("trend of dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fp string
		var b int64
		var n int
		if err := rows.Scan(&fp, &b, &n); err != nil {
			return nil, fmt.Errorf("trend of dead letters: %w", err)
		}
		if i, ok := index[fp]; ok && b >= 0 && b < int64(buckets) {
			groups[i].Trend[b] += n
		}
	}
	return groups, rows.Err()
}

// clipped is s cut short for an error message.
func clipped(s string) string { return deadletter.HeaderValue(s, 80) }
