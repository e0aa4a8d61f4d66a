package demo

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// accountsConfig gives the demo an application account for the workload
// (the default for clients that send no credentials, so the plain `nats`
// CLI works), a second team's account (see TeamWorkload), and a system
// account, so jetwatch can show per-server health and every account.
const accountsConfig = `
server_name: jetwatch-demo
accounts {
  APP { jetstream: enabled, users: [{user: app, password: app}] }
  LEDGER { jetstream: enabled, users: [{user: ledger, password: ledger}] }
  SYS { users: [{user: sys, password: sys}] }
}
system_account: SYS
no_auth_user: app
`

// SystemUser and SystemPassword authenticate in the demo's system account;
// TeamUser and TeamPassword in the second team's account, LEDGER.
const (
	SystemUser     = "sys"
	SystemPassword = "sys"
	TeamUser       = "ledger"
	TeamPassword   = "ledger"
)

// StartServer starts the embedded NATS server with JetStream storing under
// dataDir/nats, on host:port. Port 0 picks a free port.
func StartServer(dataDir, host string, port int) (*server.Server, error) {
	storeDir := filepath.Join(dataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return nil, fmt.Errorf("demo nats store %s: %w", storeDir, err)
	}
	conf := filepath.Join(dataDir, "nats-demo.conf")
	if err := os.WriteFile(conf, []byte(accountsConfig), 0o600); err != nil {
		return nil, fmt.Errorf("demo nats config: %w", err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return nil, fmt.Errorf("demo nats config: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
		return nil, fmt.Errorf("demo nats port %d is taken (another NATS server?): pass --nats-port 0 for a free one: %w", port, err)
	} else {
		ln.Close()
	}
	opts.Host = host
	opts.Port = port
	opts.JetStream = true
	opts.StoreDir = storeDir
	opts.NoLog = true
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("demo nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, errors.New("demo nats server did not become ready within 15s")
	}
	return s, nil
}
