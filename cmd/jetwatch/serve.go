package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/query"
	"github.com/jetwatch/jetwatch/internal/gctune"
	"github.com/jetwatch/jetwatch/internal/natsconn"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/streambrowse"
	"github.com/jetwatch/jetwatch/web"
)

func runServe(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	status := natsconn.NewStatus()
	nc, err := natsconn.Connect(ctx, cfg.NATS, logger, status)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	var sys *nats.Conn
	var sysStatus *natsconn.Status
	if cfg.systemConfigured() {
		sysStatus = natsconn.NewStatus()
		sys, err = natsconn.Connect(ctx, cfg.System, logger.With("connection", "system"), sysStatus)
		if err != nil {
			return fmt.Errorf("nats system connection: %w", err)
		}
		defer sys.Close()
	}
	accounts, err := connectAccounts(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		for _, a := range accounts {
			a.nc.Close()
		}
	}()
	return serveWith(ctx, cfg, logger, stdout, conns{nc: nc, status: status, sys: sys, sysStatus: sysStatus, accounts: accounts})
}

// conns are jetwatch's NATS connections with their status; sys and
// sysStatus are nil without a system-account user; accounts are those of
// --account.
type conns struct {
	nc, sys           *nats.Conn
	status, sysStatus *natsconn.Status
	accounts          []accountConn
}

// lost waits for ctx to end or for a connection to be closed for good,
// which nats.go never recovers from: jetwatch then exits with an error,
// so that its supervisor starts it again with fresh connections.
func (c conns) lost(ctx context.Context, logger *slog.Logger) error {
	var which string
	var st *natsconn.Status
	select {
	case <-ctx.Done():
		return nil
	case <-c.status.Lost():
		which, st = "", c.status
	case <-c.sysStatus.Lost():
		which, st = "system ", c.sysStatus
	}
	if ctx.Err() != nil {
		return nil
	}
	reason := st.Snapshot().LastError
	logger.Error("the NATS "+which+"connection was closed for good; exiting so that a supervisor starts jetwatch again", "err", reason)
	return fmt.Errorf("the NATS %sconnection was closed for good (%s): exiting so that a supervisor starts jetwatch again", which, reason)
}

// serveWith runs every part and the web server on established
// connections until ctx ends or a connection is lost for good, then stops
// them in reverse order.
func serveWith(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer, c conns) error {
	// Ended by the caller, or when a connection is lost for good: every
	// part started below stops with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acc, err := buildAccess(cfg, logger)
	if err != nil {
		return err
	}
	proto, err := cfg.protoTypes()
	if err != nil {
		return err
	}
	if err := checkListen(cfg, acc.auth != nil); err != nil {
		return err
	}
	stopSignOuts, err := startSignOuts(ctx, c.nc, cfg, acc, logger)
	if err != nil {
		return err
	}
	defer stopSignOuts()
	db, err := store.Open(ctx, cfg.Data)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetLogger(logger)

	reg := newRegistry(c.nc)
	sampler, err := collector.NewSampler(c.nc, db, collector.SamplerConfig{
		Interval:    cfg.SampleInterval,
		StallAfter:  cfg.StallAfter,
		Retention:   store.Retention{Raw: cfg.HistoryRaw, FiveMinute: cfg.History5m, Hourly: cfg.History1h},
		SystemConn:  c.sys,
		AllAccounts: cfg.AllAccounts,
		OwnStreams:  []string{cfg.AdvisoryStream, cfg.DLQStream},
		Registerer:  reg,
		Logger:      logger,

		TracerProvider: cfg.Tracing,
	})
	if err != nil {
		return err
	}
	if err := sampler.Start(ctx); err != nil {
		return err
	}
	defer sampler.Stop()

	var others []*accountParts
	var alertAccounts []alert.DeadLetterAccount
	for i, ac := range c.accounts {
		a, err := openAccount(ctx, ac, c.nc, c.accounts[:i], cfg, logger)
		if err != nil {
			return err
		}
		defer a.db.Close()
		others = append(others, a)
		alertAccounts = append(alertAccounts, alert.DeadLetterAccount{Name: a.name, DeadLetters: a.queries})
	}
	p, err := buildParts(c.nc, db, cfg, acc.auth != nil, sampler.State, alertAccounts, reg, logger)
	if err != nil {
		return err
	}
	browser, err := streambrowse.New(c.nc)
	if err != nil {
		return err
	}
	if acc.auth != nil {
		acc.auth.Tokens = p.tokens
		if acc.auth.Users != nil {
			go watchUsersFile(ctx, acc.auth.Users, logger)
		}
	}
	pending := pendingGauge()
	reg.MustRegister(pending)
	go countPending(ctx, p.queries, pending, 5*time.Second)
	groups := p.groups(logger)
	gatherers := prometheus.Gatherers{reg}
	var accounts []web.DeadLetterAccount
	for _, a := range others {
		groups = append(groups, a.group(logger))
		gatherers = append(gatherers, a.reg)
		go countPending(ctx, a.queries, a.pending, 5*time.Second)
		accounts = append(accounts, a.web())
		go a.watchLost(ctx, logger)
	}
	for _, g := range groups {
		g.Start(ctx, func() { logger.Info(g.name + " running") })
		defer g.Stop()
	}
	var alerts web.Alerts
	if p.rules != nil {
		go p.rules.watch(ctx)
		alerts = alert.Alerting{Evaluator: p.evaluator, Log: alert.NewDeliveryLog(db)}
	}

	srv, err := web.New(web.Config{
		Alerts:             alerts,
		DemoReceiver:       cfg.DemoReceiver,
		Index:              db,
		DeadLetters:        p.queries,
		DeadLetterActions:  p.redeliverer,
		DeadLetterAccounts: accounts,
		Bulk:               p.bulk,
		Pauses:             p.pauses,
		TraceURL:           cfg.TraceURL,
		Journeys:           web.JourneyConfig{Reader: p.journeyReader, Streams: cfg.JourneyStreams, Correlations: p.correlations},
		Auth:               acc.auth,
		Audit:              p.audit,
		Redact:             acc.redactor,
		HidePayloads:       cfg.HidePayloads,
		Messages:           browser,
		Proto:              proto,
		OwnStreams:         []string{cfg.AdvisoryStream, cfg.DLQStream},
		TrustedProxies:     acc.proxies,
		TracerProvider:     cfg.Tracing,
		TLSCertFile:        cfg.TLSCert,
		TLSKeyFile:         cfg.TLSKey,
		NATSState:          natsState(c.status),
		SamplerState:       sampler.State,
		Gatherer:           gatherers,
		SampledMetrics:     sampler.WriteMetrics,
		Logger:             logger,
		Listen:             cfg.Listen,
		SampleInterval:     cfg.SampleInterval,
		StallAfter:         cfg.StallAfter,
		Version:            version(),

		// /readyz and the dead-letters page report the index's stalls.
		DeadLetterIndex: p.index,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "jetwatch %s\n  dashboard: %s://%s/\n  data:      %s\n", version(), scheme, srv.Addr(), db.Path())
	logger.Info("jetwatch serving", "dashboard", scheme+"://"+srv.Addr()+"/", "data", db.Path(), "sign_in", signInSummary(acc),
		"gogc", gctune.Percent())

	lostErr := c.lost(ctx, logger)
	cancel()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(shutdownCtx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Warn("web server shutdown", "err", err)
	}
	return lostErr
}

// newRegistry is the metrics registry with the process's own series.
func newRegistry(nc *nats.Conn) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		connectedGauge(nc),
	)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jetwatch_build_info", Help: "Always 1; labels say which jetwatch runs.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version(), runtime.Version()).Set(1)
	reg.MustRegister(buildInfo)
	return reg
}

// natsState is the state of a connection as the pages show it.
func natsState(st *natsconn.Status) func() web.NATSState {
	return func() web.NATSState {
		s := st.Snapshot()
		return web.NATSState{Connected: s.Connected, Closed: s.Closed, Since: s.Since, LastError: s.LastError, Server: s.ServerURL, ServerName: s.ServerName}
	}
}

// connectedGauge is jetwatch_nats_connected of nc.
func connectedGauge(nc *nats.Conn) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jetwatch_nats_connected", Help: "1 while jetwatch is connected to NATS.",
	}, func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	})
}

// signInSummary says in the start log how operators sign in.
func signInSummary(a access) string {
	if a.auth == nil {
		return "none: everyone who reaches jetwatch is an admin"
	}
	var ways []string
	if a.auth.Users != nil {
		ways = append(ways, "password ("+a.auth.Users.Path()+")")
	}
	if a.auth.Proxy.Enabled() {
		ways = append(ways, "proxy header "+a.auth.Proxy.UserHeader)
	}
	return strings.Join(append(ways, "API tokens"), ", ")
}

// checkListen refuses a non-loopback address without sign-in unless the
// operator accepts, knowingly, that anyone who reaches it can act on dead
// letters.
func checkListen(cfg *config, signIn bool) error {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", cfg.Listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if cfg.InsecureNoAuth || signIn {
		return nil
	}
	return fmt.Errorf("--listen %s is reachable from other machines, but no sign-in is configured: anyone who reaches it could redeliver or discard dead letters. Configure sign-in with --users FILE (create it with `jetwatch user add --users FILE --role admin NAME`) or proxy sign-in with --proxy-user-header, --proxy-roles and --trusted-proxies; or pass --insecure-no-auth (JETWATCH_INSECURE_NO_AUTH=true) if you accept that", cfg.Listen)
}

// pendingGauge is jetwatch_dead_letters_pending, of one account.
func pendingGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jetwatch_dead_letters_pending",
		Help: "Dead letters neither redelivered nor discarded, from the index (counted every 5 s).",
	})
}

// countPending sets jetwatch_dead_letters_pending from the index every
// interval until ctx ends: counting in the background, rather than when
// scraped, keeps SQLite out of /metrics (a COUNT over a million rows per
// scrape). NaN says the last count failed.
func countPending(ctx context.Context, q *query.Queries, g prometheus.Gauge, every time.Duration) {
	g.Set(math.NaN())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		n, err := q.Count(cctx, store.DeadLetterFilter{Status: store.StatusPending})
		cancel()
		if err == nil {
			g.Set(float64(n))
		} else if ctx.Err() == nil {
			g.Set(math.NaN())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
