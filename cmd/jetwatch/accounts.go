package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natsconn"
	"github.com/jetwatch/jetwatch/internal/startstop"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/web"
)

// ErrBadAccount is returned (wrapped) for an --account that cannot work:
// a malformed NAME=CONTEXT, a bad or repeated name.
var ErrBadAccount = errors.New("bad --account")

// accountSpec is one --account NAME=CONTEXT: an account whose dead letters
// jetwatch captures, indexes and acts on through a user of that account.
type accountSpec struct {
	// Name labels the account everywhere jetwatch shows it, and names its
	// index partition file.
	Name string
	// Context is the natscli context of a user in that account.
	Context string
}

// accountName is what an account's label may be: it goes into URLs,
// metric labels and a file name, so nothing that needs escaping.
var accountName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseAccountSpec checks one NAME=CONTEXT.
func parseAccountSpec(s string) (accountSpec, error) {
	name, ctx, ok := strings.Cut(strings.TrimSpace(s), "=")
	name, ctx = strings.TrimSpace(name), strings.TrimSpace(ctx)
	if !ok || ctx == "" {
		return accountSpec{}, fmt.Errorf("%w %q: give NAME=CONTEXT, the account's label and the natscli context of a user in it (e.g. payments=payments-dlq)", ErrBadAccount, cut(s))
	}
	if !accountName.MatchString(name) {
		return accountSpec{}, fmt.Errorf("%w %q: the name may hold letters, digits, - and _ only, at most 64 of them", ErrBadAccount, cut(name))
	}
	return accountSpec{Name: name, Context: ctx}, nil
}

// cut bounds what an error repeats of an operator's input.
func cut(s string) string {
	const most = 80
	if len(s) <= most {
		return s
	}
	return s[:most] + "…"
}

// accountsValue is the repeatable --account flag, kept as given and
// checked by parseAccounts once every flag is parsed (the flag package
// would hide ErrBadAccount from errors.Is). Its default comes from
// JETWATCH_ACCOUNTS (comma separated); the first flag given replaces that
// default rather than adding to it, as any flag wins over its variable.
type accountsValue struct {
	given       []string
	fromDefault bool
}

func (v *accountsValue) String() string {
	if v == nil {
		return ""
	}
	return strings.Join(v.given, ",")
}

func (v *accountsValue) Set(s string) error {
	if v.fromDefault {
		v.given, v.fromDefault = nil, false
	}
	v.given = append(v.given, s)
	return nil
}

func accountsSetting(v *accountsValue) func(*flag.FlagSet, string, string, string) error {
	return func(fs *flag.FlagSet, name, def, usage string) error {
		v.given = splitList(def)
		v.fromDefault = len(v.given) > 0
		fs.Var(v, name, usage)
		return nil
	}
}

// parseAccounts checks every --account and refuses two with one name.
// Names are compared without case: each names a file, and macOS and
// Windows file systems would make B.db and b.db one file.
func parseAccounts(v *accountsValue) ([]accountSpec, error) {
	var list []accountSpec
	seen := map[string]string{}
	for _, s := range v.given {
		a, err := parseAccountSpec(s)
		if err != nil {
			if v.fromDefault {
				return nil, fmt.Errorf("JETWATCH_ACCOUNTS: %w", err)
			}
			return nil, err
		}
		if prev, ok := seen[strings.ToLower(a.Name)]; ok {
			return nil, fmt.Errorf("%w: %q and %q name the same account; give each account a name of its own", ErrBadAccount, prev, a.Name)
		}
		seen[strings.ToLower(a.Name)] = a.Name
		list = append(list, a)
	}
	return list, nil
}

// accountConn is the connection of one --account, with its status.
type accountConn struct {
	name   string
	nc     *nats.Conn
	status *natsconn.Status
}

// connectAccounts connects a user of each --account. Like the main
// connection, each keeps retrying in the background while its server is
// down; an error here is a setting that can never work, such as an
// unknown context.
func connectAccounts(ctx context.Context, cfg *config, logger *slog.Logger) ([]accountConn, error) {
	var out []accountConn
	for _, a := range cfg.Accounts {
		status := natsconn.NewStatus()
		nc, err := natsconn.Connect(ctx, natsconn.Options{Context: a.Context, Name: "jetwatch-account-" + a.Name},
			logger.With("account", a.Name), status)
		if err != nil {
			for _, c := range out {
				c.nc.Close()
			}
			return nil, fmt.Errorf("--account %s: %w", a.Name, err)
		}
		out = append(out, accountConn{name: a.Name, nc: nc, status: status})
	}
	return out, nil
}

// accountParts are the dead-letter parts of one --account: the same
// constructors as the main account's, on that account's connection, with
// an index partition of its own (a SQLite file beside the main one). Its
// metrics carry an account label on a registry of their own, so the main
// account's series stay as they were.
type accountParts struct {
	name        string
	conn        accountConn
	db          *store.DB
	reg         *prometheus.Registry
	relay       *collector.Relay
	bridge      *collector.Bridge
	index       *index.Index
	queries     *query.Queries
	redeliverer *redeliver.Redeliverer
	bulk        *bulk.Runner
	pending     prometheus.Gauge
	// check refuses the account when another of jetwatch's users is in it.
	check *accountCheck
}

// accountPartition is where an account's index lives: its own file, so
// dead letters' sequences, which restart in each account's DLQ stream,
// never collide, and the file can be deleted and rebuilt on its own.
func accountPartition(dataDir, name string) string {
	return filepath.Join(dataDir, "accounts", name+".db")
}

// openAccount opens c's index partition and builds its parts.
// main and earlier are the connections c's account must differ from.
func openAccount(ctx context.Context, c accountConn, main *nats.Conn, earlier []accountConn, cfg *config, logger *slog.Logger) (_ *accountParts, err error) {
	path := accountPartition(cfg.Data, c.name)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("account %s: index directory: %w", c.name, err)
	}
	db, err := store.OpenFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", c.name, err)
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	logger = logger.With("account", c.name)
	db.SetLogger(logger)
	a := &accountParts{name: c.name, conn: c, db: db, reg: prometheus.NewRegistry(),
		check: &accountCheck{name: c.name, nc: c.nc, main: main, earlier: earlier, logger: logger}}
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"account": c.name}, a.reg)
	a.pending = pendingGauge()
	for _, g := range []prometheus.Collector{connectedGauge(c.nc), a.pending} {
		if err := reg.Register(g); err != nil {
			return nil, fmt.Errorf("account %s: %w", c.name, err)
		}
	}
	streams := streamsConfig(cfg)
	capture, err := cfg.captureStreams()
	if err != nil {
		return nil, err
	}
	if a.bridge, err = collector.NewBridge(c.nc, collector.BridgeConfig{Streams: streams, CaptureStreams: capture, Events: db,
		Registerer: reg, Logger: logger, TracerProvider: cfg.Tracing}); err != nil {
		return nil, fmt.Errorf("account %s: %w", c.name, err)
	}
	if a.relay, err = collector.NewRelay(c.nc, collector.RelayConfig{Streams: streams, Registerer: reg, Logger: logger}); err != nil {
		return nil, fmt.Errorf("account %s: %w", c.name, err)
	}
	searchText, searchMasks, err := searchMasking(cfg)
	if err != nil {
		return nil, err
	}
	if a.index, err = index.New(c.nc, db, index.Config{Stream: cfg.DLQStream, SearchText: searchText, SearchMasks: searchMasks,
		Registerer: reg, Logger: logger}); err != nil {
		return nil, fmt.Errorf("account %s: %w", c.name, err)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", c.name, err)
	}
	a.queries = query.New(db, js, cfg.DLQStream)
	// It publishes on the account's own connection: redeliveries go to
	// the account's streams, under the same target policy as the main
	// account's.
	if a.redeliverer, err = redeliver.New(c.nc, db, redeliver.Config{Stream: cfg.DLQStream, Registerer: reg,
		TracerProvider: cfg.Tracing, Logger: logger, Policy: redeliver.TargetPolicy{OwnStreams: []string{cfg.AdvisoryStream},
			Subjects: splitList(cfg.RedeliverSubjects)}}); err != nil {
		return nil, fmt.Errorf("account %s: %w", c.name, err)
	}
	// Its jobs bucket is in the account, beside the DLQ stream its jobs
	// act on. Breakers are not asked: the main account's are not the
	// account's services', and a job must not hold for a stranger's.
	a.bulk = bulk.NewRunner(js, a.queries, a.redeliverer, bulk.Config{Replicas: cfg.StreamReplicas, Logger: logger,
		TracerProvider: cfg.Tracing, Account: c.name})
	return a, nil
}

// web is the account as the pages and API read it.
func (a *accountParts) web() web.DeadLetterAccount {
	return web.DeadLetterAccount{Name: a.name, DeadLetters: a.queries, Actions: a.redeliverer, Index: a.index,
		NATSState: natsState(a.conn.status), NATSAccount: a.check.NATSAccount, Refused: a.check.Refused, Bulk: a.bulk}
}

// group is the account's start group, on its own so that its NATS being
// down or refusing a permission never holds back another account's.
func (a *accountParts) group(logger *slog.Logger) startGroup {
	g := startstop.New(logger.With("account", a.name))
	g.Add("account check", a.check)
	g.Then()
	g.Add("dead-letter advisory relay", a.relay)
	g.Add("dead-letter capture", a.bridge)
	g.Then()
	g.Add("dead-letter index", a.index)
	g.Add("bulk jobs", a.bulk)
	return startGroup{"dead-letter capture of account " + a.name, g}
}

// watchLost logs when the account's connection is closed for good. Unlike
// the main connection's, this does not end jetwatch: one account's revoked
// user would otherwise restart the dashboard of every account, over and
// over. The account's capture stays stopped until jetwatch restarts.
func (a *accountParts) watchLost(ctx context.Context, logger *slog.Logger) {
	select {
	case <-ctx.Done():
	case <-a.conn.status.Lost():
		logger.Error("the NATS connection of an account was closed for good: its dead letters are not captured until jetwatch restarts",
			"account", a.name, "err", a.conn.status.Snapshot().LastError)
	}
}

// accountCheckTimeout bounds each $SYS.REQ.USER.INFO of the check.
const accountCheckTimeout = 5 * time.Second

// accountCheck is the first part of an account's start group: it asks the
// server which account each connection's user is in, and refuses an
// --account that is jetwatch's own account or an earlier --account's,
// whose dead letters would otherwise be captured, indexed and counted
// twice. A refusal is for good (the settings must change); a question
// without an answer (a connection down, the permission missing) is tried
// again, holding this account's capture back until it is answered.
type accountCheck struct {
	name    string
	nc      *nats.Conn
	main    *nats.Conn
	earlier []accountConn
	logger  *slog.Logger

	mu      sync.Mutex
	refused string
	id      string // the account's id (its name without an operator), once checked and not refused
}

// Start answers once the account is known to be one jetwatch captures
// nowhere else; a refused account's Start waits for ctx, so nothing after
// it in the group starts.
func (a *accountCheck) Start(ctx context.Context) error {
	_, own, err := collector.UserAccount(ctx, a.nc, accountCheckTimeout)
	if err != nil {
		return fmt.Errorf("account %s: learn which account its user is in (allow it to publish $SYS.REQ.USER.INFO): %w", a.name, err)
	}
	_, main, err := collector.UserAccount(ctx, a.main, accountCheckTimeout)
	if err != nil {
		return fmt.Errorf("account %s: learn jetwatch's own account, to tell it apart (allow the main user to publish $SYS.REQ.USER.INFO): %w", a.name, err)
	}
	if own == main {
		return a.refuse(ctx, fmt.Sprintf("--account %s is a user of jetwatch's own account (%s), whose dead letters jetwatch captures already: nothing of it is captured twice; remove --account %s or give it a user of another account", a.name, cut(own), a.name))
	}
	for _, e := range a.earlier {
		_, id, err := collector.UserAccount(ctx, e.nc, accountCheckTimeout)
		if err != nil {
			return fmt.Errorf("account %s: learn the account of --account %s, to tell them apart: %w", a.name, e.name, err)
		}
		if id == own {
			return a.refuse(ctx, fmt.Sprintf("--account %s and --account %s are users of one account (%s): its dead letters are captured under %s only; remove one of them", e.name, a.name, cut(own), e.name))
		}
	}
	a.mu.Lock()
	a.id = own
	a.mu.Unlock()
	return nil
}

// NATSAccount is the account's id as NATS answered, once the check
// passed; empty before that and for a refused account.
func (a *accountCheck) NATSAccount() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

func (a *accountCheck) refuse(ctx context.Context, why string) error {
	a.mu.Lock()
	a.refused = why
	a.mu.Unlock()
	a.logger.Error("an --account is refused: its dead letters are not captured", "why", why)
	<-ctx.Done()
	return ctx.Err()
}

func (a *accountCheck) Stop() {}

// Refused says why the account is refused; empty while it is not.
func (a *accountCheck) Refused() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}
