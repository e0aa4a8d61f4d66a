package natsconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrUnknownContext is returned (wrapped) when a named context has no file.
var ErrUnknownContext = errors.New("unknown nats context")

// contextFile is the part of a natscli context file (natscli v0.5.0; the
// format is jsm.go's natscontext) that jetwatch reads. Unknown keys, such
// as description and color_scheme, are ignored.
type contextFile struct {
	URL           string `json:"url"`
	User          string `json:"user"`
	Password      string `json:"password"`
	Token         string `json:"token"`
	Creds         string `json:"creds"`
	NKey          string `json:"nkey"`
	Cert          string `json:"cert"`
	Key           string `json:"key"`
	CA            string `json:"ca"`
	TLSFirst      bool   `json:"tls_first"`
	InboxPrefix   string `json:"inbox_prefix"`
	JSDomain      string `json:"jetstream_domain"`
	JSAPIPrefix   string `json:"jetstream_api_prefix"`
	JSEventPrefix string `json:"jetstream_event_prefix"`

	// Settings jetwatch cannot honour. A context using them is rejected:
	// silently dropping them would connect differently from natscli.
	NSC          string `json:"nsc"`
	UserJWT      string `json:"user_jwt"`
	UserSeed     string `json:"user_seed"`
	SocksProxy   string `json:"socks_proxy"`
	WinCertStore string `json:"windows_cert_store"`
}

// DefaultContextDir is where natscli keeps contexts:
// $XDG_CONFIG_HOME/nats/context, else ~/.config/nats/context (natscli uses
// ~/.config on every OS, so os.UserConfigDir would be wrong on macOS).
func DefaultContextDir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "nats", "context"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the natscli context directory: %w", err)
	}
	return filepath.Join(home, ".config", "nats", "context"), nil
}

// loadContext reads the context called name from dir (or the default
// directory). Like natscli, a name ending in .json that is an existing file
// is read as that file.
func loadContext(name, dir string) (*contextFile, error) {
	path, err := contextPath(name, dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w %q: %s does not exist; %s", ErrUnknownContext, name, path, availableContexts(filepath.Dir(path)))
	}
	if err != nil {
		return nil, fmt.Errorf("read nats context %q: %w", name, err)
	}
	var c contextFile
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("nats context %q: %s is not valid JSON: %w", name, path, err)
	}
	return &c, nil
}

func contextPath(name, dir string) (string, error) {
	if strings.HasSuffix(name, ".json") {
		if fi, err := os.Stat(name); err == nil && !fi.IsDir() {
			return name, nil
		}
	}
	// Same rule as natscli: a name must not leave the context directory.
	if strings.Contains(name, "..") || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("invalid nats context name %q: it must not contain \"..\", \"/\" or \"\\\"", name)
	}
	if dir == "" {
		d, err := DefaultContextDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	dir, err := expandHome(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name+".json"), nil
}

// availableContexts describes the contexts in dir, for the unknown-context
// error: a typo is then one glance away from its fix.
func availableContexts(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "no contexts in " + dir
	}
	var names []string
	for _, e := range entries { // ReadDir sorts by name
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && n != "" && !e.IsDir() {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "no contexts in " + dir
	}
	return "available: " + strings.Join(names, ", ")
}

// mergeInto fills the fields r leaves empty from the context. The
// context's credentials are skipped as a group when explicitCreds is set.
func (c *contextFile) mergeInto(r *Options, explicitCreds bool) error {
	switch {
	case c.SocksProxy != "":
		return errors.New("socks_proxy is not supported by jetwatch")
	case c.WinCertStore != "":
		return errors.New("windows_cert_store is not supported by jetwatch; use cert, key and ca files")
	}
	// fill sets *dst from the context's value unless it is already set,
	// resolving file references and secrets; the first error sticks.
	var err error
	fill := func(dst *string, field, v string, resolve func(string, string) (string, error)) {
		if err == nil && *dst == "" && v != "" {
			*dst, err = resolve(field, v)
		}
	}
	literal := func(_, v string) (string, error) { return v, nil }

	fill(&r.Servers, "url", c.URL, literal)
	fill(&r.TLSCert, "cert", c.Cert, contextFilePath)
	fill(&r.TLSKey, "key", c.Key, contextFilePath)
	fill(&r.TLSCA, "ca", c.CA, contextFilePath)
	fill(&r.InboxPrefix, "inbox_prefix", c.InboxPrefix, literal)
	fill(&r.JSDomain, "jetstream_domain", c.JSDomain, literal)
	fill(&r.JSAPIPrefix, "jetstream_api_prefix", c.JSAPIPrefix, literal)
	fill(&r.JSEventPrefix, "jetstream_event_prefix", c.JSEventPrefix, literal)
	r.TLSFirst = r.TLSFirst || c.TLSFirst
	if explicitCreds || err != nil {
		return err
	}
	switch {
	case c.NSC != "":
		return errors.New("nsc lookups are not supported by jetwatch; export a .creds file and set creds")
	case c.UserJWT != "" || c.UserSeed != "":
		return errors.New("user_jwt/user_seed are not supported by jetwatch; use a .creds file")
	}
	fill(&r.User, "user", c.User, literal)
	fill(&r.Password, "password", c.Password, contextSecret)
	fill(&r.Token, "token", c.Token, contextSecret)
	fill(&r.Creds, "creds", c.Creds, contextFilePath)
	fill(&r.NKey, "nkey", c.NKey, contextFilePath)
	return err
}

// Schemes natscli resolves through plugins (1Password, nsc) or that hold
// the material inline; jetwatch reads files only.
var unsupportedSchemes = []string{"op://", "nsc://", "data:", "env://"}

// contextFilePath turns a context's path field into a path: natscli expands
// $VARS in them and accepts file:// URLs.
func contextFilePath(field, v string) (string, error) {
	if p, ok := strings.CutPrefix(v, "file://"); ok {
		return os.ExpandEnv(p), nil
	}
	for _, s := range unsupportedSchemes {
		if strings.HasPrefix(v, s) {
			return "", fmt.Errorf("%s: %s references are not supported by jetwatch; give a file path", field, s)
		}
	}
	return os.ExpandEnv(v), nil
}

// contextSecret resolves a password or token the way natscli does for the
// env:// and file:// schemes; anything else is the literal secret. Errors
// name the reference, never the secret.
func contextSecret(field, v string) (string, error) {
	if name, ok := strings.CutPrefix(v, "env://"); ok {
		s := os.Getenv(name)
		if s == "" {
			return "", fmt.Errorf("%s: environment variable %q is not set", field, name)
		}
		return s, nil
	}
	if p, ok := strings.CutPrefix(v, "file://"); ok {
		p, err := expandHome(os.ExpandEnv(p))
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	for _, s := range []string{"op://", "nsc://", "data:"} {
		if strings.HasPrefix(v, s) {
			return "", fmt.Errorf("%s: %s references are not supported by jetwatch", field, s)
		}
	}
	return v, nil
}
