// Command jetwatch watches a NATS JetStream deployment: stream health,
// consumer lag and its history, served as a dashboard, a JSON API and
// Prometheus metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/jetwatch/jetwatch/internal/gctune"
)

func main() {
	gctune.Apply(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runIO(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "jetwatch:", err)
		os.Exit(1)
	}
}

const usage = `jetwatch watches NATS JetStream: stream health, consumer lag, history.

Usage:
  jetwatch demo [flags]    embedded NATS server, sample workload and dashboard
  jetwatch serve [flags]   watch the NATS server given by --server / --context
  jetwatch reindex [flags] rebuild the dead-letter index from the DLQ stream
  jetwatch user ...        add, remove or list users of the sign-in page
  jetwatch token ...       create, list or revoke API tokens
  jetwatch version         print the version

Run 'jetwatch <command> -h' for the flags of a command; every flag can also
be set by the environment variable named in its help.
`

// run is the whole program, without globals: tests call it with their own
// arguments, environment and output. Its stdin is empty.
func run(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	return runIO(ctx, args, env, strings.NewReader(""), stdout)
}

// runIO is run with an input, for the commands that read one.
func runIO(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return errors.New("no command given")
	}
	switch cmd := args[0]; cmd {
	case "serve", "demo", "reindex":
		cfg, err := parseFlags(cmd, args[1:], env, stdout)
		if err != nil {
			return err
		}
		if _, err := cfg.captureStreams(); err != nil {
			return err // before anything connects
		}
		if _, err := cfg.journeyStreams(); err != nil {
			return err
		}
		if _, err := cfg.correlations(); err != nil {
			return err
		}
		logger, err := newLogger(cfg.LogFormat, cfg.LogLevel, stdout)
		if err != nil {
			return err
		}
		logger, stopTracing, err := startTracing(ctx, cfg, env, logger)
		if err != nil {
			return err
		}
		defer stopTracing()
		switch cmd {
		case "demo":
			return runDemo(ctx, cfg, logger, stdout)
		case "reindex":
			return runReindex(ctx, cfg, logger, stdout)
		}
		return runServe(ctx, cfg, logger, stdout)
	case "user":
		return runUser(args[1:], env, stdin, stdout)
	case "token":
		return runToken(ctx, args[1:], env, stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "jetwatch", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stdout, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", format)
}

// version is the module version when built from a tagged module, else the
// VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
