package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/demo"
	"github.com/jetwatch/jetwatch/demo/receiver"
	"github.com/jetwatch/jetwatch/internal/natsconn"
)

func runDemo(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	ns, err := demo.StartServer(cfg.Data, "127.0.0.1", cfg.NATSPort)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	url := ns.ClientURL()

	wnc, err := nats.Connect(url, nats.Name("demo-workload"))
	if err != nil {
		return fmt.Errorf("demo workload connection: %w", err)
	}
	defer wnc.Close()
	workload, err := demo.NewWorkload(wnc, demo.WorkloadConfig{Logger: logger})
	if err != nil {
		return err
	}
	if err := workload.Start(ctx); err != nil {
		return err
	}
	defer workload.Stop()

	cfg.NATS.Servers = url
	status := natsconn.NewStatus()
	nc, err := natsconn.Connect(ctx, cfg.NATS, logger, status)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	sysOpts := cfg.System
	sysOpts.Servers, sysOpts.User, sysOpts.Password = url, demo.SystemUser, demo.SystemPassword
	sysStatus := natsconn.NewStatus()
	sys, err := natsconn.Connect(ctx, sysOpts, logger.With("connection", "system"), sysStatus)
	if err != nil {
		return fmt.Errorf("nats system connection: %w", err)
	}
	defer sys.Close()

	// A second team's account, for the accounts page.
	tnc, err := nats.Connect(url, nats.Name("demo-ledger"), nats.UserInfo(demo.TeamUser, demo.TeamPassword))
	if err != nil {
		return fmt.Errorf("demo ledger connection: %w", err)
	}
	defer tnc.Close()
	if err := demo.StartTeam(ctx, tnc); err != nil {
		return err
	}
	cfg.AllAccounts = true

	if err := demoRules(cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "jetwatch demo\n  nats:      %s   (try: nats --server %s stream report)\n", url, url)
	return serveWith(ctx, cfg, logger, stdout, conns{nc: nc, status: status, sys: sys, sysStatus: sysStatus})
}

// demoRules, unless --rules names a file, writes the demo's rules to the
// data directory, sending to the built-in receiver on the dashboard's
// address: a newcomer sees alerts fire and arrive, signed.
func demoRules(cfg *config) error {
	cfg.DemoReceiver = &receiver.Receiver{}
	if cfg.Rules != "" {
		return nil
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", cfg.Listen, err)
	}
	if port == "0" {
		// The receiver's URL must be known before the rules load: take a
		// free port now.
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		cfg.Listen = ln.Addr().String()
		ln.Close()
	}
	_, port, _ = net.SplitHostPort(cfg.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	file := filepath.Join(cfg.Data, "demo-rules.yaml")
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.Data, err)
	}
	if err := os.WriteFile(file, demo.Rules(net.JoinHostPort(host, port)), 0o600); err != nil {
		return fmt.Errorf("write the demo's alert rules: %w", err)
	}
	cfg.Rules = file
	return nil
}
