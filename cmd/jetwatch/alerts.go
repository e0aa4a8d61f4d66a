package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jetwatch/jetwatch/alert"
)

// rulesFile holds the rules in force and reloads them on SIGHUP or when
// the file changes; a bad reload is logged and the old rules stay.
type rulesFile struct {
	path   string
	env    func(string) string
	logger *slog.Logger
	rules  atomic.Pointer[alert.Rules]
	mod    time.Time
}

// loadRules reads the rules file once: an error here stops jetwatch, so a
// broken file never starts silently without alerts.
func loadRules(path string, env func(string) string, logger *slog.Logger) (*rulesFile, error) {
	rs, err := alert.LoadFile(path, env)
	if err != nil {
		return nil, err
	}
	f := &rulesFile{path: path, env: env, logger: logger.With("component", "alerts", "file", path)}
	f.rules.Store(rs)
	if fi, err := os.Stat(path); err == nil {
		f.mod = fi.ModTime()
	}
	f.logger.Info("alert rules loaded", "rules", len(rs.Rules), "receivers", len(rs.Receivers))
	return f, nil
}

func (f *rulesFile) current() *alert.Rules { return f.rules.Load() }

// watch reloads on SIGHUP and when the file's modification time changes,
// until ctx ends.
func (f *rulesFile) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			f.reload("SIGHUP")
		case <-t.C:
			fi, err := os.Stat(f.path)
			if err == nil && !fi.ModTime().Equal(f.mod) {
				f.mod = fi.ModTime()
				f.reload("file changed")
			}
		}
	}
}

func (f *rulesFile) reload(why string) {
	rs, err := alert.LoadFile(f.path, f.env)
	if err != nil {
		f.logger.Error("alert rules not reloaded; the previous rules stay in force", "why", why, "err", err)
		return
	}
	f.rules.Store(rs)
	f.logger.Info("alert rules reloaded", "why", why, "rules", len(rs.Rules), "receivers", len(rs.Receivers))
}
