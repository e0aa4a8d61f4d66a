package natsconn

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
)

// DefaultServer is used when neither the options nor a context name one.
const DefaultServer = nats.DefaultURL

// Options are the connection settings natscli users know. Empty fields are
// unset; [Options.Resolve] merges a named context and applies defaults.
type Options struct {
	// Servers is --server / NATS_URL: comma-separated URLs. Defaults to
	// DefaultServer when neither it nor a context gives one.
	Servers string
	// Creds is --creds / NATS_CREDS: path of a .creds file (JWT and seed).
	Creds string
	// NKey is --nkey / NATS_NKEY: path of an nkey seed file.
	NKey string
	// User is --user / NATS_USER. As in natscli, a User given without a
	// Password is sent as a token.
	User string
	// Password is --password / NATS_PASSWORD.
	Password string
	// Token is --token / NATS_TOKEN.
	Token string
	// TLSCert and TLSKey are --tlscert / NATS_CERT and --tlskey / NATS_KEY:
	// the client certificate and its key.
	TLSCert, TLSKey string
	// TLSCA is --tlsca / NATS_CA: the CA bundle that verifies the server.
	TLSCA string
	// TLSFirst is natscli's --tlsfirst: the TLS handshake happens before
	// the server's greeting. Set by the flag or by the context.
	TLSFirst bool
	// Context is --context / NATS_CONTEXT: the name of a natscli context,
	// or the path of a context .json file. No context is read unless named.
	Context string
	// ContextDir is where natscli keeps contexts; defaults to
	// $XDG_CONFIG_HOME/nats/context or ~/.config/nats/context.
	ContextDir string
	// Name is the client connection name servers show; defaults to
	// "jetwatch".
	Name string
	// InboxPrefix replaces _INBOX for replies; it lets jetwatch run under
	// permissions that only allow a custom inbox.
	InboxPrefix string
	// JSDomain, JSAPIPrefix and JSEventPrefix come from a context
	// (jetstream_domain, jetstream_api_prefix, jetstream_event_prefix).
	// Connecting does not use them; they are carried for the code that
	// builds the JetStream API so it talks to what the context names.
	JSDomain, JSAPIPrefix, JSEventPrefix string
}

// Resolve returns the settings to connect with: the named context, if any,
// under the explicit fields; DefaultServer when no server is given; "~"
// expanded in paths.
//
// Explicit fields win over the context's field by field, except
// credentials, which are taken as a group: when any of User, Password,
// Token, Creds or NKey is given, none of the context's credentials are
// used, so an explicit --creds is not mixed with a context's password.
//
// Only a context named in Context is read; natscli's selected context is
// ignored on purpose (see the package documentation).
func (o Options) Resolve() (Options, error) {
	r := o
	// natscli sends --user without --password as a token ("Username or
	// Token"); do the same so natscli command lines work unchanged.
	if r.User != "" && r.Password == "" && r.Token == "" {
		r.Token, r.User = r.User, ""
	}
	if r.Context != "" {
		c, err := loadContext(r.Context, r.ContextDir)
		if err != nil {
			return Options{}, err
		}
		if err := c.mergeInto(&r, o.hasCredentials()); err != nil {
			return Options{}, fmt.Errorf("nats context %q: %w", r.Context, err)
		}
	}
	r.Servers = cmp.Or(r.Servers, DefaultServer)
	for _, p := range []*string{&r.Creds, &r.NKey, &r.TLSCert, &r.TLSKey, &r.TLSCA} {
		expanded, err := expandHome(*p)
		if err != nil {
			return Options{}, err
		}
		*p = expanded
	}
	if err := r.validate(); err != nil {
		return Options{}, err
	}
	return r, nil
}

func (o Options) hasCredentials() bool {
	return o.User != "" || o.Password != "" || o.Token != "" || o.Creds != "" || o.NKey != ""
}

// validate rejects combinations nats.go would accept but that cannot be
// what was meant: nats.go would send several kinds of credentials and the
// server would pick one.
func (o Options) validate() error {
	kinds := 0
	for _, set := range []bool{o.User != "", o.Creds != "", o.NKey != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return errors.New("conflicting credentials: give only one of user/password, creds and nkey")
	case o.Password != "" && o.User == "":
		return errors.New("a password needs a user")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("tls client certificate and key go together: give both --tlscert and --tlskey")
	}
	return nil
}

// expandHome replaces a leading "~" with the home directory, as a shell
// would; flags like --creds=~/x.creds and context files rely on it.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}
