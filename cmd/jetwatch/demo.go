package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/demo"
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
	sys, err := natsconn.Connect(ctx, sysOpts, logger.With("connection", "system"), nil)
	if err != nil {
		return fmt.Errorf("nats system connection: %w", err)
	}
	defer sys.Close()

	fmt.Fprintf(stdout, "jetwatch demo\n  nats:      %s   (try: nats --server %s stream report)\n", url, url)
	return serveWith(ctx, cfg, logger, stdout, nc, sys, status)
}
