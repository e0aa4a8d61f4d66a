package web

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/audit"
	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/demo/receiver"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/dlq/redact"
	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// Index is what the web server reads. *store.DB implements it; every method
// must honour ctx and report an unknown stream or consumer with an error
// wrapping store.ErrNotFound.
type Index interface {
	Streams(ctx context.Context) ([]store.Stream, error)
	Stream(ctx context.Context, name string) (store.Stream, error)
	Consumers(ctx context.Context, stream string) ([]store.Consumer, error)
	Consumer(ctx context.Context, stream, name string) (store.Consumer, error)
	// TopLagging, Stalled and Counts leave jetwatch's own streams and
	// consumers out unless own is set.
	TopLagging(ctx context.Context, limit int, own bool) ([]store.Consumer, error)
	Stalled(ctx context.Context, own bool) ([]store.Consumer, error)
	Counts(ctx context.Context, own bool) (store.Counts, error)
	// QueryStreams is one page of the overview's stream table; Unwell
	// what the triage lists of streams and consumers. QueryStreamKeys is
	// QueryStreams's window as keys, and StreamsNamed reads the streams
	// of a page of them (those still stored).
	QueryStreams(ctx context.Context, q store.StreamQuery) (store.StreamResult, error)
	QueryStreamKeys(ctx context.Context, q store.StreamQuery) (store.StreamKeyResult, error)
	StreamsNamed(ctx context.Context, names []string) (map[string]store.Stream, error)
	Unwell(ctx context.Context, limit int, own bool) (store.Unwell, error)
	DeadLetterArrivals(ctx context.Context, since, until time.Time, buckets int) ([]int, error)
	Servers(ctx context.Context) ([]store.Server, error)
	StreamHistory(ctx context.Context, stream string, since, until time.Time, points int) ([]store.StreamPoint, error)
	ConsumerHistory(ctx context.Context, stream, consumer string, since, until time.Time, points int) ([]store.ConsumerPoint, error)
	PendingSparklines(ctx context.Context, stream string, since, until time.Time, points int) (map[string][]uint64, error)
	CheckWritable(ctx context.Context) error
	Events(ctx context.Context, f store.EventFilter) ([]store.Event, error)
	Breakers(ctx context.Context, now time.Time) ([]store.Breaker, error)
	BreakerTransitions(ctx context.Context, service, breaker string, limit int) ([]store.BreakerTransition, error)
	BreakerHistory(ctx context.Context, service, breaker string, since time.Time, limit int) ([]store.BreakerTransition, error)
}

// DeadLetters is what the pages and API read of dead letters. *query.Queries
// implements it.
type DeadLetters interface {
	List(ctx context.Context, f store.DeadLetterFilter, limit int, cursor string) (store.DeadLetterPage, error)
	CountUpTo(ctx context.Context, f store.DeadLetterFilter, limit int) (int, bool, error)
	Get(ctx context.Context, id uint64) (store.DeadLetter, error)
	GetMany(ctx context.Context, ids []uint64) (map[uint64]store.DeadLetter, error)
	Groups(ctx context.Context, f store.DeadLetterFilter, limit int, now time.Time, window time.Duration, buckets int) ([]store.DeadLetterGroup, error)
	History(ctx context.Context, id uint64) ([]dlq.Action, error)
}

// DeadLetterActions redelivers and discards dead letters.
// *redeliver.Redeliverer implements it.
type DeadLetterActions interface {
	Redeliver(ctx context.Context, req redeliver.Request) (dlq.Action, error)
	Discard(ctx context.Context, id uint64, actor, note string) (dlq.Action, error)
}

// DeadLetterIndex is how the dead-letter index stands: /readyz fails while
// it is stalled, and the dead-letters page and API show why and which dead
// letters it could not store. *index.Index implements it; Status's error is
// a failure to read the database.
type DeadLetterIndex interface {
	Status(ctx context.Context) (index.Status, error)
}

// Alerts is the alerting the pages and API use. alert.Alerting implements
// it. Silence and Acknowledge report a rule or instance that does not exist
// with alert.ErrUnknownAlert, and a request that cannot be done as asked
// with alert.ErrBadRequest.
type Alerts interface {
	Statuses() ([]alert.RuleStatus, time.Time)
	Rules() *alert.Rules
	Silences(ctx context.Context) ([]alert.Silence, error)
	Silence(ctx context.Context, req alert.SilenceRequest) (alert.Silence, error)
	Acknowledge(ctx context.Context, fingerprint, by, note string) error
	Deliveries(ctx context.Context, limit int) ([]alert.Delivery, error)
}

// DemoReceiver is the demo's built-in webhook receiver. receiver.Receiver
// implements it.
type DemoReceiver interface {
	// Receive records a webhook request and returns the status to answer.
	Receive(r *http.Request) int
	Arrivals() []receiver.Arrival
}

// NATSState is the connection state the pages and /readyz report.
type NATSState struct {
	Connected bool
	// Closed is set when the connection was closed for good: it will not
	// reconnect, and /healthz fails until jetwatch is restarted.
	Closed bool
	// Since is when the current state (connected or not) began.
	Since     time.Time
	LastError string
	// Server is the URL of the server, without credentials.
	Server     string
	ServerName string
}

// Config configures the web server.
type Config struct {
	// Index is read for every page and API answer. Required.
	Index Index
	// NATSState reports the current NATS connection. Required.
	NATSState func() NATSState
	// SamplerState reports the sampler's last cycle. Required.
	SamplerState func() store.SamplerState
	// Gatherer's metrics are served at /metrics. Required.
	Gatherer prometheus.Gatherer
	// SampledMetrics, when set, writes the stream, consumer and server
	// series followed by extra (the Gatherer's metrics, in the text
	// format), as one gzip member when gz is set. The collector keeps them
	// ready from its last cycle, because building a million series on
	// every scrape is too slow. Defaults to none.
	SampledMetrics func(w io.Writer, gz bool, extra []byte) error
	// Logger receives request logs and errors. Defaults to slog.Default().
	Logger *slog.Logger
	// Listen is the address to listen on; port 0 picks a free port.
	// Defaults to 127.0.0.1:8080.
	Listen string
	// SampleInterval is shown on the pages, sets the live refresh period
	// and marks data older than three intervals as stale. Defaults to 10
	// seconds.
	SampleInterval time.Duration
	// StallAfter is shown on the overview to explain what stalled means.
	// Defaults to 5 minutes.
	StallAfter time.Duration
	// Version is shown in the footer. Defaults to "devel".
	Version string
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// DeadLetters serves the dead-letter pages and API. Without it they
	// answer 503.
	DeadLetters DeadLetters
	// DeadLetterActions redelivers and discards. Without it (or without
	// DeadLetters) redelivering and discarding answer 503.
	DeadLetterActions DeadLetterActions
	// DeadLetterIndex reports the dead-letter index's lag and stalls.
	// Without it /readyz does not check the index and the dead-letters
	// page shows no index banners.
	DeadLetterIndex DeadLetterIndex
	// DeadLetterAccounts are more accounts whose dead letters the pages
	// and API read under ?account=NAME. Defaults to none.
	DeadLetterAccounts []DeadLetterAccount
	// Bulk runs bulk redeliveries and discards. Without it they answer 503.
	Bulk BulkJobs
	// Pauses pauses and resumes consumers on the server. Without it those
	// routes answer 503 and the consumer page offers no pause.
	Pauses ConsumerPauses
	// Alerts serves the alert pages and API. Without it they answer 503.
	Alerts Alerts
	// DemoReceiver, in the demo only, serves /demo/receiver: webhooks
	// post to it (signed, so without the CSRF token) and the page shows
	// what arrived. Defaults to none: the route does not exist.
	DemoReceiver DemoReceiver
	// Journeys serves the journey pages and API; without its Reader they
	// answer 503.
	Journeys JourneyConfig
	// TraceURL links trace ids to a tracing UI: {trace_id} is replaced.
	// Defaults to no link.
	TraceURL string
	// Auth says how operators sign in. Nil means nobody signs in and
	// everyone who reaches jetwatch is an admin: serve allows that only on
	// loopback (or with --insecure-no-auth).
	Auth *AuthConfig
	// Audit records every action and payload view. Without it, entries
	// only reach the log.
	Audit AuditLog
	// HidePayloads hides dead-letter and stream message payloads from
	// viewers.
	HidePayloads bool
	// Messages serves the stream browser. Without it, it answers 503.
	Messages StreamMessages
	// Proto decodes protobuf payloads by subject (--proto-types).
	// Defaults to none: protobuf payloads are shown as hex.
	Proto views.ProtoDecoder
	// OwnStreams are jetwatch's streams under names of the operator's
	// choosing (its DLQ and advisory streams): the stream browser shows
	// them, like JETWATCH_* and KV_ streams, only to admins who ask.
	OwnStreams []string
	// Redact masks header values and JSON fields everywhere they are shown.
	Redact *redact.Redactor
	// TLSCertFile and TLSKeyFile, when set, make the server speak HTTPS.
	// The files are read again when they change (a renewed certificate
	// needs no restart).
	TLSCertFile, TLSKeyFile string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client. Without them the client is the connection's peer.
	TrustedProxies []netip.Prefix
	// TracerProvider traces each request as a span. Defaults to no tracing.
	TracerProvider trace.TracerProvider
}

// AuditLog records and lists audit entries. *audit.Log implements it.
type AuditLog interface {
	Record(ctx context.Context, e audit.Entry) error
	List(ctx context.Context, f store.AuditFilter, limit int) ([]audit.Entry, error)
}

// Server is jetwatch's HTTP server: pages, API, metrics and probes.
type Server struct {
	cfg    Config
	logger *slog.Logger
	echo   *echo.Echo
	assets *assets
	// slowRequest is how long a request may take before its log line is
	// a warning.
	slowRequest time.Duration

	tls *tls.Config
	// needs is the role each route needs, by "METHOD /path".
	needs map[string]auth.Role
	// actions is what the audit log calls each audited route.
	actions map[string]string
	// tokenSeen rate-limits token.use audit entries of read requests.
	tokenSeen sync.Map
	// csrfRefused rate-limits the audit entries of CSRF refusals, by
	// actor (auditCSRFRefusal).
	csrfMu      sync.Mutex
	csrfRefused map[string]time.Time

	mu      sync.Mutex
	ln      net.Listener
	http    *http.Server
	done    chan struct{}
	stopped bool
}

// New checks cfg, fills its defaults and builds the routes.
func New(cfg Config) (*Server, error) {
	if cfg.Index == nil || cfg.NATSState == nil || cfg.SamplerState == nil || cfg.Gatherer == nil {
		return nil, errors.New("web: Index, NATSState, SamplerState and Gatherer are required")
	}
	if cfg.SampleInterval < 0 || cfg.StallAfter < 0 {
		return nil, errors.New("web: SampleInterval and StallAfter must not be negative")
	}
	seenAccounts := map[string]bool{}
	for _, a := range cfg.DeadLetterAccounts {
		if a.Name == "" || a.DeadLetters == nil || a.NATSState == nil || seenAccounts[a.Name] {
			return nil, errors.New("web: each of DeadLetterAccounts needs a Name of its own, DeadLetters and NATSState")
		}
		seenAccounts[a.Name] = true
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Listen = cmp.Or(cfg.Listen, "127.0.0.1:8080")
	cfg.SampleInterval = cmp.Or(cfg.SampleInterval, 10*time.Second)
	cfg.StallAfter = cmp.Or(cfg.StallAfter, 5*time.Minute)
	cfg.Version = cmp.Or(cfg.Version, "devel")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if a := cfg.Auth; a != nil {
		if a.Users != nil && a.Sessions == nil {
			return nil, errors.New("web: Auth.Users needs Auth.Sessions")
		}
		if err := a.Proxy.Check(); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		if a.Users == nil && !a.Proxy.Enabled() && a.Tokens == nil {
			return nil, errors.New("web: Auth needs users, a proxy or tokens")
		}
		if a.Lockout == nil {
			a2 := *a
			a2.Lockout = auth.NewLockout(5, 15*time.Minute)
			cfg.Auth = &a2
		}
	}
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		kp, err := newKeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	}
	a, err := newAssets()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "web"), assets: a, needs: map[string]auth.Role{},
		actions: map[string]string{}, tls: tlsConfig, slowRequest: slowRequest}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Outermost first: every answer, errors and panics included, carries
	// the security headers and is logged once.
	e.IPExtractor = cfg.clientIP()
	// Outermost first: every answer, errors and panics included, carries
	// the security headers and is logged once.
	e.Use(s.traceRequests()) // outermost: the span covers the rest, the request log line included
	e.Use(s.securityHeaders, s.logRequests, recoverPanics, limitBodies, s.authenticate, s.csrf)
	s.routes(e)
	s.echo = e
	return s, nil
}

// clientIP says whose address a request is: the connection's peer, or
// with trusted proxies the last address in X-Forwarded-For that is not
// one of them. Echo's default would believe any X-Forwarded-For, letting a
// client choose the address its sign-in failures are counted against.
func (cfg Config) clientIP() echo.IPExtractor {
	if len(cfg.TrustedProxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range cfg.TrustedProxies {
		opts = append(opts, echo.TrustIPRange(netipToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func netipToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Handler is the server's HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.echo }

// Start listens on Config.Listen and serves in the background. It returns
// once listening, or the error that prevented it (a port already taken).
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil || s.stopped {
		return errors.New("web: server already started or stopped")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln, s.http, s.done = ln, srv, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on once started (the real port
// when Listen used port 0), else Config.Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down gracefully, letting requests in flight finish
// until ctx ends. Safe to call twice, and before Start.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, done, already := s.http, s.done, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if srv == nil || already {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		// Requests still running when ctx ended are cut off.
		srv.Close() //nolint:errcheck // the shutdown error says more
		err = fmt.Errorf("web: shutdown: %w", err)
	}
	<-done
	return err
}
