package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/store"
)

// Index is what the web server reads. *store.DB implements it.
type Index interface {
	Streams(ctx context.Context) ([]store.Stream, error)
	Stream(ctx context.Context, name string) (store.Stream, error)
	Consumers(ctx context.Context, stream string) ([]store.Consumer, error)
	Consumer(ctx context.Context, stream, name string) (store.Consumer, error)
	TopLagging(ctx context.Context, limit int) ([]store.Consumer, error)
	Stalled(ctx context.Context) ([]store.Consumer, error)
	Counts(ctx context.Context) (store.Counts, error)
	Servers(ctx context.Context) ([]store.Server, error)
	StreamHistory(ctx context.Context, stream string, since, until time.Time, points int) ([]store.StreamPoint, error)
	ConsumerHistory(ctx context.Context, stream, consumer string, since, until time.Time, points int) ([]store.ConsumerPoint, error)
	PendingSparklines(ctx context.Context, stream string, since, until time.Time, points int) (map[string][]uint64, error)
	CheckWritable(ctx context.Context) error
}

// NATSState is the connection state the UI and readiness report.
type NATSState struct {
	Connected  bool
	Since      time.Time // when the current state began
	LastError  string
	Server     string // URL without credentials
	ServerName string
}

// SamplerState is what the sampler reports about its last cycle.
type SamplerState struct {
	FirstCycleDone bool
	LastCycleAt    time.Time
	LastDuration   time.Duration
	Streams        int
	Consumers      int
	Errors         []string
	JSZ            string // empty while per-server health is available, else why not
}

// Config configures the web server.
type Config struct {
	// Index is read for every page and API answer. Required.
	Index Index
	// NATSState reports the connection. Required.
	NATSState func() NATSState
	// SamplerState reports the sampler. Required.
	SamplerState func() SamplerState
	// Gatherer is served at /metrics. Required.
	Gatherer prometheus.Gatherer
	// SampledMetrics writes the stream and consumer gauges after the
	// Gatherer's metrics, in the text format, gzipped when gz is set.
	// Optional.
	SampledMetrics func(w io.Writer, gz bool) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Listen is the address to listen on. Defaults to 127.0.0.1:8080.
	Listen string
	// SampleInterval sets the live refresh period and when data is stale.
	// Defaults to 10 seconds.
	SampleInterval time.Duration
	// StallAfter is shown to explain what stalled means. Defaults to 5 minutes.
	StallAfter time.Duration
	// Version is shown in the footer.
	Version string
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is jetwatch's HTTP server.
type Server struct {
	cfg    Config
	logger *slog.Logger
	echo   *echo.Echo
	assets *assets

	mu       sync.Mutex
	ln       net.Listener
	http     *http.Server
	done     chan struct{}
	stopOnce sync.Once
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Index == nil || cfg.NATSState == nil || cfg.SamplerState == nil || cfg.Gatherer == nil {
		return nil, errors.New("web: Index, NATSState, SamplerState and Gatherer are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Listen = cmp.Or(cfg.Listen, "127.0.0.1:8080")
	cfg.SampleInterval = cmp.Or(cfg.SampleInterval, 10*time.Second)
	cfg.StallAfter = cmp.Or(cfg.StallAfter, 5*time.Minute)
	cfg.Version = cmp.Or(cfg.Version, "devel")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a, err := newAssets()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "web"), assets: a}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	e.Use(securityHeaders)
	e.Use(s.logRequests)

	e.GET("/", s.overview)
	e.GET("/streams/:stream", s.streamShow)
	e.GET("/streams/:stream/consumers/:consumer", s.consumerShow)

	api := e.Group("/api/v1")
	api.GET("/streams", s.apiStreamList)
	api.GET("/streams/:stream", s.apiStreamShow)
	api.GET("/streams/:stream/consumers", s.apiConsumerList)
	api.GET("/streams/:stream/consumers/:consumer", s.apiConsumerShow)

	e.GET("/metrics", s.metrics)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/:hash/:name", s.assets.serve)
	s.echo = e
	return s, nil
}

// Handler is the server's HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.echo }

// Start listens and serves in the background; it returns once listening.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.ln, s.http, s.done = ln, srv, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down gracefully. Safe to call twice.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		srv, done := s.http, s.done
		s.mu.Unlock()
		if srv == nil {
			return
		}
		if err = srv.Shutdown(ctx); err != nil {
			err = fmt.Errorf("web shutdown: %w", err)
		}
		<-done
	})
	return err
}
