// Package natstest starts real in-process NATS servers for tests: JetStream
// on, a random port, storage in the test's temporary directory, shut down
// when the test ends.
package natstest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Option adjusts the server options before start.
type Option func(*server.Options)

// WithSystemAccount configures an application account "APP" (JetStream
// enabled, the default for unauthenticated clients) and the system account
// "SYS" with user sys/sys, so $SYS requests can be tested.
func WithSystemAccount(t testing.TB) Option {
	return WithAccounts(t, AccountsConfig)
}

// WithAccounts configures the accounts, users, system account and
// no_auth_user of conf, a server configuration.
func WithAccounts(t testing.TB, conf string) Option {
	return func(o *server.Options) {
		file := filepath.Join(t.TempDir(), "accounts.conf")
		err := os.WriteFile(file, []byte(conf), 0o600)
		if err != nil {
			t.Fatalf("write accounts config: %v", err)
		}
		parsed, err := server.ProcessConfigFile(file)
		if err != nil {
			t.Fatalf("accounts config: %v", err)
		}
		o.Accounts, o.Users = parsed.Accounts, parsed.Users
		o.SystemAccount, o.NoAuthUser = parsed.SystemAccount, parsed.NoAuthUser
	}
}

// AccountsConfig is the server configuration WithSystemAccount applies.
const AccountsConfig = `
accounts {
  APP { jetstream: enabled, users: [{user: app, password: app}] }
  SYS { users: [{user: sys, password: sys}] }
}
system_account: SYS
no_auth_user: app
`

// WithPort fixes the port, to restart a server where clients expect it.
func WithPort(port int) Option {
	return func(o *server.Options) { o.Port = port }
}

// Restartable takes a port the server keeps across a restart: one outside
// the range the system gives outgoing connections their own ports from.
// A random listening port comes from that range, and once its server
// stops, any test's next connection may be given it, so a server
// started again on it could not listen (and, without a logger, never
// becomes ready).
func Restartable(t testing.TB) Option {
	t.Helper()
	port := RestartablePort(t)
	return func(o *server.Options) { o.Port = port }
}

// RestartablePort is a free loopback port below the ephemeral range (or
// above it when that leaves no room below): see Restartable.
func RestartablePort(t testing.TB) int {
	t.Helper()
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo, &hi) //nolint:errcheck // the defaults stand
	}
	from, to := 10000, lo-1
	if to-from < 1000 {
		from, to = hi+1, 65535
	}
	for range 100 {
		port := from + rand.IntN(to-from+1)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no free port in %d-%d", from, to)
	return 0
}

// WithStoreDir fixes the JetStream store directory, to restart a server
// with its data.
func WithStoreDir(dir string) Option {
	return func(o *server.Options) { o.StoreDir = dir }
}

// RunServer starts a JetStream-enabled server and registers its shutdown.
func RunServer(t testing.TB, opts ...Option) *server.Server {
	t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, opt := range opts {
		opt(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s and registers the close.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// CheckFor polls fn until it returns nil or timeout passes, then fails
// with fn's last error. Use it instead of sleeping.
func CheckFor(t testing.TB, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
