package natsconn

import (
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Status tracks a connection's state for the UI ("NATS unreachable since
// <Since>: <LastError>"). It is safe for concurrent use. Where a *Status is
// optional (Connect, NATSOptions), nil means none.
type Status struct {
	mu   sync.Mutex
	snap StatusSnapshot
	// lost is closed once nats.go gave up on the connection for a reason
	// other than Close: an error the server answered with (a control
	// line it could not parse), or credentials rejected twice.
	lost     chan struct{}
	lostOnce sync.Once
}

// StatusSnapshot is a copy of the state at one moment.
type StatusSnapshot struct {
	Connected bool
	// Closed is set once the connection gave up for good: it was closed,
	// or the server rejected the credentials twice in a row.
	Closed bool
	// Since is when the current state (connected or not) began.
	Since time.Time
	// LastError is why the connection is down; empty while connected.
	LastError string
	// ServerURL is the server connected to, or last connected to (or the
	// configured ones before the first connect), without credentials.
	ServerURL  string
	ServerName string
	// Reconnects counts successful reconnects.
	Reconnects uint64
}

// NewStatus returns a status that starts disconnected, since now.
func NewStatus() *Status {
	return &Status{snap: StatusSnapshot{Since: time.Now(), LastError: "not connected yet"}, lost: make(chan struct{})}
}

// Lost is closed when the connection is closed for good by an error
// rather than by Close: nats.go will not reconnect, so the process must
// connect anew or exit. Nil (never closed) for a nil Status.
func (s *Status) Lost() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.lost
}

// Snapshot returns the current state.
func (s *Status) Snapshot() StatusSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// Options returns nats.go options that keep s current. They chain to the
// handlers already installed by earlier options (and NATSOptions' handlers
// chain to these), so they compose with logging instead of replacing it,
// in either order. NATSOptions already includes them when given a Status:
// pass them yourself only for connections built without it.
func (s *Status) Options() []nats.Option {
	if s == nil {
		return nil
	}
	return []nats.Option{handlers{
		connected:    func(nc *nats.Conn) { s.up(nc, false) },
		reconnected:  func(nc *nats.Conn) { s.up(nc, true) },
		disconnected: func(nc *nats.Conn, err error) { s.down(err, false) },
		closed: func(nc *nats.Conn) {
			err := closeReason(nc)
			s.down(err, true)
			if err != nil {
				s.lostOnce.Do(func() { close(s.lost) })
			}
		},
		reconnectErr: func(nc *nats.Conn, err error) { s.noteError(nc, err) },
		asyncErr: func(nc *nats.Conn, sub *nats.Subscription, err error) {
			// Subscription errors (slow consumers) say nothing about
			// the connection; connection-level ones while down (an auth
			// error during reconnect) say why it stays down.
			if sub == nil {
				s.noteError(nc, err)
			}
		},
	}.option()}
}

// setServers records the configured servers until a connection says which
// one it reached, so the UI can name what is unreachable.
func (s *Status) setServers(servers string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.ServerURL == "" {
		s.snap.ServerURL = RedactURL(servers)
	}
}

func (s *Status) up(nc *nats.Conn, reconnected bool) {
	url, name := RedactURL(nc.ConnectedUrl()), nc.ConnectedServerName()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.snap.Connected {
		s.snap.Since = time.Now()
	}
	s.snap.Connected, s.snap.Closed, s.snap.LastError = true, false, ""
	if url != "" { // empty if the connection dropped again meanwhile
		s.snap.ServerURL, s.snap.ServerName = url, name
	}
	if reconnected {
		s.snap.Reconnects++
	}
}

func (s *Status) down(err error, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.Connected {
		s.snap.Since = time.Now()
	}
	s.snap.Connected = false
	s.snap.Closed = s.snap.Closed || closed
	switch {
	case err != nil:
		s.snap.LastError = err.Error()
	case closed:
		s.snap.LastError = "connection closed"
	default:
		s.snap.LastError = "disconnected"
	}
}

func (s *Status) noteError(nc *nats.Conn, err error) {
	if err == nil {
		return
	}
	pool := strings.Join(nc.Servers(), ",")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.Connected {
		return
	}
	s.snap.LastError = err.Error()
	if s.snap.ServerURL == "" {
		s.snap.ServerURL = RedactURL(pool)
	}
}
