package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/ensure"
	"github.com/jetwatch/jetwatch/internal/streamreader"
	"github.com/jetwatch/jetwatch/store"
)

// DefaultStream is the stream audit entries are kept in.
const DefaultStream = "JETWATCH_AUDIT"

// SubjectPrefix is where entries are published: jetwatch.audit.<action>.
const SubjectPrefix = "jetwatch.audit."

// position names the index's place in stream_positions.
const position = "audit"

// Entry is one audited act.
type Entry struct {
	// ID is the entry's sequence in the audit stream; 0 before it is stored.
	ID   uint64    `json:"id,omitempty"`
	Time time.Time `json:"time"`
	// Actor is who acted: a user, "token:<name>", "proxy:<user>" or
	// "anonymous@<address>" without sign-in.
	Actor string `json:"actor"`
	// Method is how the actor was identified: password, token, proxy, none.
	Method string `json:"method"`
	// Action is what was done: redeliver, edit, discard, bulk.create,
	// bulk.pause, login, logout, token.create, token.revoke, token.use,
	// payload.view, alert.silence, ...
	Action string `json:"action"`
	// Target is what it was done to: "dead-letter 42", "job 7f3a", a user.
	Target string `json:"target"`
	// Account is the account (serve's --account NAME) whose dead letter
	// Target is; empty for the main account's, and for what is not a dead
	// letter. Dead-letter ids restart in each account.
	Account string `json:"account,omitempty"`
	// Result is how it went, in words.
	Result string `json:"result"`
	Failed bool   `json:"failed"`
	// Addr is the client address.
	Addr string `json:"addr"`
}

// Config configures the audit log.
type Config struct {
	// Stream defaults to JETWATCH_AUDIT.
	Stream string
	// Replicas of the stream. Defaults to 1.
	Replicas int
	// MaxAge bounds how long entries are kept. Defaults to 400 days.
	MaxAge time.Duration
	// Logger receives one line per entry (component=audit), so the audit
	// trail also reaches the logs. Defaults to slog.Default().
	Logger *slog.Logger
}

// Log records entries in JetStream and indexes them into SQLite.
type Log struct {
	cfg    Config
	js     jetstream.JetStream
	db     *store.DB
	logger *slog.Logger
	// follower indexes the audit stream from the stored position.
	follower *streamreader.Follower[[]jetstream.Msg]
	// open says the audit stream exists: Record may publish.
	open atomic.Bool
}

// ErrUnavailable answers a Record while the audit stream is not reached
// yet (NATS down, or a permission missing: the log says which).
var ErrUnavailable = errors.New("the audit stream is not available until jetwatch reaches NATS")

// New returns the audit log of cfg.Stream, indexed into db; it asks NATS
// nothing until Start. Its index in db is readable from the start.
func New(nc *nats.Conn, db *store.DB, cfg Config) (*Log, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 400 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, js: js, db: db, logger: cfg.Logger.With("component", "audit")}
	l.follower, err = streamreader.NewFollower(js, streamreader.FollowerConfig[[]jetstream.Msg]{
		Stream: cfg.Stream, Batch: 500, Position: l.position, Handle: l.handle,
		What: "indexing the audit log", Logger: l.logger,
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Open is New with the audit stream created if missing, for a caller that
// records at once. Call Start to index it.
func Open(ctx context.Context, nc *nats.Conn, db *store.DB, cfg Config) (*Log, error) {
	l, err := New(nc, db, cfg)
	if err != nil {
		return nil, err
	}
	return l, l.ensureStream(ctx)
}

// ensureStream creates the audit stream if missing; Record works after it.
func (l *Log) ensureStream(ctx context.Context) error {
	if err := ensure.Stream(ctx, l.js, jetstream.StreamConfig{Name: l.cfg.Stream,
		Description: "jetwatch audit log: who did what", Subjects: []string{SubjectPrefix + ">"},
		MaxAge: l.cfg.MaxAge, Replicas: l.cfg.Replicas, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute}); err != nil {
		return err
	}
	l.open.Store(true)
	return nil
}

// Stream is the name of the audit stream.
func (l *Log) Stream() string { return l.cfg.Stream }

// Record stores e in the audit stream, waiting for JetStream to confirm.
// A retried publish of the same entry is stored once.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if !l.open.Load() {
		return ErrUnavailable
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.ID = 0
	l.logger.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("actor", e.Actor), slog.String("action", e.Action),
		slog.String("target", e.Target), slog.String("account", e.Account), slog.String("result", e.Result), slog.Bool("failed", e.Failed), slog.String("addr", e.Addr))
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var id [12]byte
	rand.Read(id[:]) //nolint:errcheck // crypto/rand never fails on Linux
	msg := &nats.Msg{Subject: SubjectPrefix + subjectToken(e.Action), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "audit:"+hex.EncodeToString(id[:]))
	for attempt := 0; ; attempt++ {
		_, err = l.js.PublishMsg(ctx, msg)
		if err == nil || attempt == 2 || ctx.Err() != nil || !errors.Is(err, nats.ErrTimeout) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("record audit entry %s on %s: %w", e.Action, l.cfg.Stream, err)
	}
	return nil
}

// subjectToken makes an action usable as one subject token.
func subjectToken(action string) string {
	t := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, strings.ToLower(action))
	if t == "" {
		return "unknown"
	}
	return t
}

// Start creates the audit stream if missing, then indexes it into SQLite
// in the background until ctx ends or Stop. A failed Start may be tried
// again.
func (l *Log) Start(ctx context.Context) error {
	if !l.open.Load() {
		if err := l.ensureStream(ctx); err != nil {
			return err
		}
	}
	l.follower.Start(ctx)
	return nil
}

// Stop stops indexing. Safe to call twice, and without Start.
func (l *Log) Stop() { l.follower.Stop() }

// position is the last audit entry indexed.
func (l *Log) position(ctx context.Context) (uint64, error) {
	pos, err := l.db.Position(ctx, position)
	if err != nil {
		return 0, fmt.Errorf("read audit index position: %w", err)
	}
	return pos, nil
}

func (l *Log) handle(ctx context.Context, batch []jetstream.Msg) (bool, error) {
	if len(batch) == 0 {
		return false, nil
	}
	return false, l.index(ctx, batch)
}

func (l *Log) index(ctx context.Context, msgs []jetstream.Msg) error {
	var last uint64
	rows := make([]store.AuditRow, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("audit entry metadata: %w", err)
		}
		last = max(last, meta.Sequence.Stream)
		var e Entry
		if err := json.Unmarshal(m.Data(), &e); err != nil || e.Action == "" {
			// Not ours, or damaged: keep a trace of it rather than stopping.
			e = Entry{Time: meta.Timestamp, Action: "unreadable", Target: m.Subject(), Failed: true,
				Result: "an entry on the audit stream could not be read"}
		}
		if e.Time.IsZero() {
			e.Time = meta.Timestamp
		}
		rows = append(rows, store.AuditRow{ID: meta.Sequence.Stream, Time: e.Time, Actor: e.Actor, Method: e.Method,
			Action: e.Action, Target: e.Target, Account: e.Account, Result: e.Result, Failed: e.Failed, Addr: e.Addr})
	}
	return l.db.InsertAuditRows(ctx, rows, position, last)
}

// List returns up to limit entries matching f, newest first.
func (l *Log) List(ctx context.Context, f store.AuditFilter, limit int) ([]Entry, error) {
	return List(ctx, l.db, f, limit)
}

// List reads the audit index in db, which is readable before the audit
// stream is.
func List(ctx context.Context, db *store.DB, f store.AuditFilter, limit int) ([]Entry, error) {
	rows, err := db.AuditRows(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = Entry{ID: r.ID, Time: r.Time, Actor: r.Actor, Method: r.Method, Action: r.Action,
			Target: r.Target, Account: r.Account, Result: r.Result, Failed: r.Failed, Addr: r.Addr}
	}
	return out, nil
}
