package natsconn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Status tracks a connection's state for the UI: connected or not, since
// when, and the last error. A nil *Status ignores updates.
type Status struct {
	mu         sync.Mutex
	connected  bool
	since      time.Time
	lastErr    string
	url        string
	serverName string
	reconnects uint64
}

// StatusSnapshot is a copy of the state at one moment.
type StatusSnapshot struct {
	Connected  bool
	Since      time.Time // when the current state began
	LastError  string
	ServerURL  string // without credentials
	ServerName string
	Reconnects uint64
}

// NewStatus returns a status that starts disconnected, since now.
func NewStatus() *Status {
	return &Status{since: time.Now(), lastErr: "not connected yet"}
}

// Snapshot returns the current state.
func (s *Status) Snapshot() StatusSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StatusSnapshot{Connected: s.connected, Since: s.since, LastError: s.lastErr,
		ServerURL: s.url, ServerName: s.serverName, Reconnects: s.reconnects}
}

func (s *Status) set(connected bool, nc *nats.Conn, err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if connected != s.connected {
		s.since = time.Now()
	}
	s.connected = connected
	if err != nil {
		s.lastErr = err.Error()
	} else if connected {
		s.lastErr = ""
	}
	if nc != nil && connected {
		s.url = RedactURL(nc.ConnectedUrl())
		s.serverName = nc.ConnectedServerName()
	}
}

func (s *Status) reconnected(nc *nats.Conn) {
	if s == nil {
		return
	}
	s.set(true, nc, nil)
	s.mu.Lock()
	s.reconnects++
	s.mu.Unlock()
}

func (s *Status) noteError(err error) {
	if s == nil || err == nil {
		return
	}
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// Connect resolves o, then connects. Because the first connect retries in
// the background, it returns a connection even while the server is down;
// status (which may be nil) says when it comes up.
func Connect(ctx context.Context, o Options, logger *slog.Logger, status *Status, extra ...nats.Option) (*nats.Conn, error) {
	o, err := o.Resolve()
	if err != nil {
		return nil, err
	}
	opts, err := o.NATSOptions(logger, status)
	if err != nil {
		return nil, err
	}
	if status != nil {
		status.mu.Lock()
		status.url = RedactURL(o.Servers)
		status.mu.Unlock()
	}
	nc, err := nats.Connect(o.Servers, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(o.Servers), err)
	}
	if nc.IsConnected() {
		status.set(true, nc, nil)
	}
	return nc, ctx.Err()
}
