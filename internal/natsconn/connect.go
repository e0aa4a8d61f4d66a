package natsconn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnect backoff bounds: a server that comes back is picked up within
// about 2 s; the failures of a long outage are logged once (see
// logHandlers), so retrying that often floods nothing.
const (
	minReconnectDelay = 250 * time.Millisecond
	maxReconnectDelay = 2 * time.Second
)

// Connect resolves o, builds its nats.go options and connects.
//
// Because the first connect keeps retrying in the background, Connect
// returns a connection even while the server is down; status, which may be
// nil, says when it comes up. Errors are for settings that can never work
// (an unknown context, a missing file, conflicting credentials). Wrong
// credentials surface asynchronously: the server's rejection closes the
// connection, which the log and status report.
//
// extra come after the built options, so they win, except for connection
// handlers: those in extra are kept and the logging and status handlers
// chain to them. ctx bounds only the initial attempt; the connection lives
// until Close.
func Connect(ctx context.Context, o Options, logger *slog.Logger, status *Status, extra ...nats.Option) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect to nats: %w", context.Cause(ctx))
	}
	o, err := o.Resolve()
	if err != nil {
		return nil, err
	}
	opts, hs, err := o.natsOptions(logger, status)
	if err != nil {
		return nil, err
	}
	// Handlers go last so they chain to any in extra instead of being
	// replaced by them.
	opts = append(append(opts, extra...), hs...)
	status.setServers(o.Servers)

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(o.Servers, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to %s: %w", RedactURL(o.Servers), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		// The attempt cannot be interrupted; close what it yields.
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(o.Servers), context.Cause(ctx))
	}
}

// NATSOptions builds the nats.go options for o (call Resolve first):
// credentials, TLS, reconnecting forever with capped exponential backoff
// and jitter, retrying the first connect in the background, and one set of
// connection handlers that logs to logger (slog.Default() when nil) and
// keeps status (which may be nil) current.
func (o Options) NATSOptions(logger *slog.Logger, status *Status) ([]nats.Option, error) {
	opts, hs, err := o.natsOptions(logger, status)
	return append(opts, hs...), err
}

// natsOptions returns the connection settings and, apart, the handlers.
func (o Options) natsOptions(logger *slog.Logger, status *Status) (opts, hs []nats.Option, err error) {
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	hs = append([]nats.Option{logHandlers(cmp.Or(logger, slog.Default()))}, status.Options()...)
	opts = []nats.Option{
		nats.Name(cmp.Or(o.Name, "jetwatch")),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		// Nothing is buffered while disconnected: a publish fails at once
		// (the request answers 503 at once), and a redelivery the operator
		// was told failed is never sent later, when the connection is back.
		nats.ReconnectBufSize(-1),
		// A monitor must start before the thing it monitors is up.
		nats.RetryOnFailedConnect(true),
	}

	switch {
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.Creds != "":
		// nats.go reads the file only when dialing; with retries on, a
		// typo would become an endless reconnect loop instead of an error.
		if _, err := os.Stat(o.Creds); err != nil {
			return nil, nil, fmt.Errorf("credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(o.Creds))
	case o.NKey != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, nil, fmt.Errorf("nkey seed file %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	return opts, hs, nil
}

// reconnectDelay is the wait after every server in the pool failed for the
// attempts-th time in a row: exponential from 250 ms, capped at 2 s, plus
// up to 20% jitter so a fleet of jetwatch replicas does not reconnect in
// lockstep.
func reconnectDelay(attempts int) time.Duration {
	d := maxReconnectDelay
	if shift := max(attempts-1, 0); shift < 3 { // 250ms<<3 is the cap
		d = min(minReconnectDelay<<shift, maxReconnectDelay)
	}
	return d + rand.N(d/5)
}

// logHandlers logs connection events. Server URLs are redacted; errors
// from nats.go name servers by host only, never by credentials.
func logHandlers(logger *slog.Logger) nats.Option {
	// Every failed reconnect attempt is reported; the first after a state
	// change is a warning, the rest are debug so an outage is one line.
	var quiet atomic.Bool
	return handlers{
		connected: func(nc *nats.Conn) {
			quiet.Store(false)
			logger.Info("nats connected", "server", RedactURL(nc.ConnectedUrl()), "server_name", nc.ConnectedServerName())
		},
		reconnected: func(nc *nats.Conn) {
			quiet.Store(false)
			logger.Info("nats reconnected", "server", RedactURL(nc.ConnectedUrl()), "server_name", nc.ConnectedServerName())
		},
		disconnected: func(nc *nats.Conn, err error) {
			quiet.Store(false)
			if nc.IsClosed() {
				return // Close was called: the closed handler logs it.
			}
			logger.Warn("nats disconnected, reconnecting", "err", err)
		},
		reconnectErr: func(nc *nats.Conn, err error) {
			level := slog.LevelWarn
			if quiet.Swap(true) {
				level = slog.LevelDebug
			}
			logger.Log(context.Background(), level, "nats not reachable, retrying", "servers", RedactURL(strings.Join(nc.Servers(), ",")), "err", err)
		},
		closed: func(nc *nats.Conn) {
			if err := closeReason(nc); err != nil {
				logger.Error("nats connection closed, not reconnecting", "err", err)
				return
			}
			logger.Info("nats connection closed")
		},
		asyncErr: func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Error("nats subscription error", "subject", sub.Subject, "err", err)
				return
			}
			logger.Error("nats error", "err", err)
		},
	}.option()
}

// closeReason says why nats.go closed nc, or nil when Close was called.
func closeReason(nc *nats.Conn) error {
	err := nc.LastError()
	// Reconnecting forever, the pool only runs out when Close interrupts
	// a reconnect loop, which then records ErrNoServers: not a failure.
	if errors.Is(err, nats.ErrNoServers) && nc.Opts.MaxReconnect < 0 {
		return nil
	}
	return err
}

// handlers is one set of connection callbacks. nats.go keeps a single
// callback of each kind, so option installs them chained to whatever is
// already set rather than replacing it: logging and Status compose in
// either order.
type handlers struct {
	connected, reconnected, closed nats.ConnHandler
	disconnected, reconnectErr     nats.ConnErrHandler
	asyncErr                       nats.ErrHandler
}

func (h handlers) option() nats.Option {
	return func(o *nats.Options) error {
		o.ConnectedCB = chainConn(o.ConnectedCB, h.connected)
		o.ReconnectedCB = chainConn(o.ReconnectedCB, h.reconnected)
		o.ClosedCB = chainConn(o.ClosedCB, h.closed)
		prev := o.DisconnectedErrCB
		if prev == nil && o.DisconnectedCB != nil {
			// DisconnectedCB is not called once DisconnectedErrCB is set.
			old := o.DisconnectedCB
			prev = func(nc *nats.Conn, _ error) { old(nc) }
		}
		o.DisconnectedErrCB = chainConnErr(prev, h.disconnected)
		o.ReconnectErrCB = chainConnErr(o.ReconnectErrCB, h.reconnectErr)
		o.AsyncErrorCB = chainErr(o.AsyncErrorCB, h.asyncErr)
		return nil
	}
}

func chainConn(a, b nats.ConnHandler) nats.ConnHandler {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(nc *nats.Conn) { a(nc); b(nc) }
}

func chainConnErr(a, b nats.ConnErrHandler) nats.ConnErrHandler {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(nc *nats.Conn, err error) { a(nc, err); b(nc, err) }
}

func chainErr(a, b nats.ErrHandler) nats.ErrHandler {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(nc *nats.Conn, sub *nats.Subscription, err error) { a(nc, sub, err); b(nc, sub, err) }
}
