package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq/redact"
	"github.com/jetwatch/jetwatch/web"
)

// access is what the flags say about who may use jetwatch.
type access struct {
	auth     *web.AuthConfig // nil: nobody signs in
	proxies  []netip.Prefix
	redactor *redact.Redactor
}

// searchMasking is how the dead-letter index masks payloads for full-text
// search, as --redact-fields masks them on every page: a search must not
// find, and so confirm, a value no page shows. It returns nil and "" when
// nothing is masked.
func searchMasking(cfg *config) (func([]byte) []byte, string, error) {
	r, err := redact.New(nil, splitList(cfg.RedactFields))
	if err != nil {
		return nil, "", fmt.Errorf("--redact-fields: %w", err)
	}
	if !r.MasksPayloads() {
		return nil, "", nil
	}
	return func(p []byte) []byte {
		masked, _ := r.Payload(p)
		return masked
	}, r.Fields(), nil
}

// buildAccess reads the sign-in, proxy and redaction settings. Every
// mistake is an error at start: a half-configured sign-in must not
// silently leave jetwatch open.
func buildAccess(cfg *config, logger *slog.Logger) (access, error) {
	var a access
	var err error
	if a.proxies, err = auth.ParseCIDRs(cfg.TrustedProxies); err != nil {
		return a, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if a.redactor, err = redact.New(splitList(cfg.RedactHeaders), splitList(cfg.RedactFields)); err != nil {
		return a, fmt.Errorf("--redact-fields: %w", err)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return a, errors.New("--tls-cert and --tls-key go together: give both, or neither")
	}
	ac := &web.AuthConfig{SecureCookies: cfg.SecureCookies}
	if cfg.Users != "" {
		if ac.Users, err = auth.OpenUsers(cfg.Users); err != nil {
			return a, fmt.Errorf("--users: %w", err)
		}
		if cfg.SessionKey == "" {
			logger.Warn("no session key set (JETWATCH_SESSION_KEY): sign-ins end when jetwatch restarts and are not shared between replicas")
		}
		if cfg.SessionTTL <= 0 {
			return a, fmt.Errorf("--session-ttl %s: a sign-in must last a positive time (e.g. 12h)", cfg.SessionTTL)
		}
		if ac.Sessions, err = auth.NewSessions(cfg.SessionKey, cfg.SessionTTL); err != nil {
			return a, fmt.Errorf("JETWATCH_SESSION_KEY: %w", err)
		}
	}
	if cfg.ProxyUserHeader != "" {
		roles, err := auth.ParseGroupRoles(cfg.ProxyRoles)
		if err != nil {
			return a, fmt.Errorf("--proxy-roles: %w", err)
		}
		ac.Proxy = &auth.Proxy{UserHeader: cfg.ProxyUserHeader, GroupsHeader: cfg.ProxyGroupsHeader,
			Trusted: a.proxies, GroupRoles: roles}
		if err := ac.Proxy.Check(); err != nil {
			return a, err
		}
	}
	if ac.Users == nil && ac.Proxy == nil {
		return a, nil
	}
	a.auth = ac // its Tokens come with NATS (buildParts)
	return a, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// watchUsersFile logs when the users file stops being readable (the users
// read before keep working) and when it is fine again.
func watchUsersFile(ctx context.Context, users *auth.Users, logger *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := ""
		if err := users.Err(); err != nil {
			now = err.Error()
		}
		switch {
		case now != "" && now != last:
			logger.Error("the users file cannot be read; sign-in keeps the users read before until it is fixed", "err", now)
		case now == "" && last != "":
			logger.Info("the users file is readable again", "path", users.Path())
		}
		last = now
	}
}

// signOutsReadWait is how long serving waits at start for the shared
// sign-outs, so that operators' sessions survive a restart without a
// new sign-in; past it, jetwatch serves and reads them when NATS answers.
const signOutsReadWait = 3 * time.Second

// startSignOuts shares sign-outs between replicas and restarts through
// JetStream. Without a session key no session outlives its process or
// reaches another replica, so there is nothing to share.
func startSignOuts(ctx context.Context, nc *nats.Conn, cfg *config, a access, logger *slog.Logger) (stop func(), err error) {
	if a.auth == nil || a.auth.Sessions == nil || cfg.SessionKey == "" {
		return func() {}, nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("sign-outs: %w", err)
	}
	so, err := auth.NewSignOuts(js, a.auth.Sessions, auth.SignOutsConfig{Replicas: cfg.StreamReplicas, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := so.Start(ctx); err != nil {
		return nil, err
	}
	select {
	case <-so.Read():
	case <-ctx.Done():
	case <-time.After(signOutsReadWait):
		logger.Warn("sign-outs are not read yet: sessions started before this jetwatch must sign in again until NATS answers",
			"bucket", auth.DefaultSignOutBucket)
	}
	return so.Stop, nil
}
