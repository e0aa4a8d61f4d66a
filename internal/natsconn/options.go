package natsconn

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultServer is used when neither the options nor a context name one.
const DefaultServer = "nats://127.0.0.1:4222"

// Options are the connection settings natscli users know.
type Options struct {
	Servers    string // comma-separated URLs. Defaults to DefaultServer.
	Creds      string // path of a .creds file
	NKey       string // path of an nkey seed file
	User       string
	Password   string
	Token      string
	TLSCert    string
	TLSKey     string
	TLSCA      string
	Context    string // name of a natscli context, read only when given
	ContextDir string // Defaults to $XDG_CONFIG_HOME/nats/context or ~/.config/nats/context.
	Name       string // client connection name
	// InboxPrefix comes from a context; it lets jetwatch run under
	// permissions that only allow a custom inbox.
	InboxPrefix string
}

// contextFile is the part of a natscli context file jetwatch uses.
type contextFile struct {
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Token       string `json:"token"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`
}

// Resolve reads the named natscli context, if any, and fills every field
// the options leave empty from it; explicit options win. A context is used
// only when named, never the CLI's selected one, so jetwatch does what its
// flags say.
func (o Options) Resolve() (Options, error) {
	if o.Context != "" {
		dir := o.ContextDir
		if dir == "" {
			dir = defaultContextDir()
		}
		path := filepath.Join(expandHome(dir), o.Context+".json")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return o, fmt.Errorf("natscli context %q not found (looked for %s); available: %s", o.Context, path, availableContexts(dir))
		}
		if err != nil {
			return o, fmt.Errorf("read natscli context %q: %w", o.Context, err)
		}
		var c contextFile
		if err := json.Unmarshal(data, &c); err != nil {
			return o, fmt.Errorf("natscli context %s is not valid JSON: %w", path, err)
		}
		o.Servers = cmp.Or(o.Servers, c.URL)
		o.User = cmp.Or(o.User, c.User)
		o.Password = cmp.Or(o.Password, c.Password)
		o.Creds = cmp.Or(o.Creds, c.Creds)
		o.NKey = cmp.Or(o.NKey, c.NKey)
		o.Token = cmp.Or(o.Token, c.Token)
		o.TLSCert = cmp.Or(o.TLSCert, c.Cert)
		o.TLSKey = cmp.Or(o.TLSKey, c.Key)
		o.TLSCA = cmp.Or(o.TLSCA, c.CA)
		o.InboxPrefix = cmp.Or(o.InboxPrefix, c.InboxPrefix)
	}
	o.Servers = cmp.Or(o.Servers, DefaultServer)
	for _, p := range []*string{&o.Creds, &o.NKey, &o.TLSCert, &o.TLSKey, &o.TLSCA} {
		*p = expandHome(*p)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return o, errors.New("TLS client certificate and key go together: give both --tlscert and --tlskey")
	}
	return o, nil
}

func defaultContextDir() string {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "nats", "context")
	}
	return filepath.Join("~", ".config", "nats", "context")
}

func availableContexts(dir string) string {
	entries, err := os.ReadDir(expandHome(dir))
	if err != nil {
		return "none (" + expandHome(dir) + " cannot be read)"
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// NATSOptions builds the nats.go options: authentication, TLS, reconnecting
// forever with capped exponential backoff and jitter (the first connect
// too), and handlers that log and keep status (which may be nil) current.
func (o Options) NATSOptions(logger *slog.Logger, status *Status) ([]nats.Option, error) {
	logger = cmp.Or(logger, slog.Default())
	opts := []nats.Option{
		nats.Name(cmp.Or(o.Name, "jetwatch")),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.ConnectHandler(func(nc *nats.Conn) {
			logger.Info("nats connected", "server", RedactURL(nc.ConnectedUrl()), "server_name", nc.ConnectedServerName())
			status.set(true, nc, nil)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", "server", RedactURL(nc.ConnectedUrl()), "server_name", nc.ConnectedServerName())
			status.reconnected(nc)
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil {
				err = errors.New("connection closed by the server")
			}
			logger.Warn("nats disconnected; reconnecting", "err", err)
			status.set(false, nc, err)
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			logger.Debug("nats reconnect attempt failed", "err", err)
			status.set(false, nc, err)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			logger.Info("nats connection closed")
			status.set(false, nc, errors.New("connection closed"))
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("nats error", "err", err, "subject", subject)
			status.noteError(err)
		}),
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	switch {
	case o.Creds != "":
		if _, err := os.Stat(o.Creds); err != nil {
			return nil, fmt.Errorf("credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(o.Creds))
	case o.NKey != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
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
	return opts, nil
}

// reconnectDelay backs off exponentially from 250 ms to 10 s, with jitter
// so a fleet of jetwatch replicas does not reconnect in lockstep.
func reconnectDelay(attempts int) time.Duration {
	d := 250 * time.Millisecond << min(max(attempts-1, 0), 6)
	d = min(d, 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

// RedactURL removes user information from each of the comma-separated URLs,
// so a URL with a password or token can be logged.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.User == nil {
			if err != nil && strings.Contains(p, "@") {
				parts[i] = "[redacted]@" + p[strings.LastIndex(p, "@")+1:]
				continue
			}
			parts[i] = p
			continue
		}
		u.User = url.User("[redacted]")
		parts[i] = strings.Replace(u.String(), "%5Bredacted%5D", "[redacted]", 1)
	}
	return strings.Join(parts, ",")
}
