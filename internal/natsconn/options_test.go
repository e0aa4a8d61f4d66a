package natsconn

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                   "",
		"nats://host:4222":                   "nats://host:4222",
		"nats://bob:s3cret@host:4222":        "nats://host:4222",
		"tls://t0ken@host:4222":              "tls://host:4222",
		"bob:s3cret@host:4222":               "host:4222",
		"nats://u:p@a:1, nats://u:p@b:2":     "nats://a:1, nats://b:2",
		"nats://a:1,nats://u:p@b:2":          "nats://a:1,nats://b:2",
		"nats://u:p@ss/w,rd%zz@h:1":          "nats://h:1", // unparsable, '@', '/' and ',' in the password
		"ws://u:p@h:443/path":                "ws://h:443/path",
		"nats://127.0.0.1:4222,tls://h:4443": "nats://127.0.0.1:4222,tls://h:4443",
	} {
		require.Equal(t, want, RedactURL(in), "RedactURL(%q)", in)
	}
}

func writeContext(t *testing.T, dir, name, body string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	path := filepath.Join(dir, name+".json")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestResolveDefaults(t *testing.T) {
	t.Parallel()
	o, err := Options{}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "nats://127.0.0.1:4222", o.Servers)

	// natscli sends a user without a password as a token.
	o, err = Options{User: "t0ken"}.Resolve()
	require.NoError(t, err)
	require.Equal(t, Options{Servers: DefaultServer, Token: "t0ken"}, o)

	home, err := os.UserHomeDir()
	require.NoError(t, err)
	o, err = Options{Creds: "~/a.creds", TLSCA: "~/ca.pem", TLSCert: "/abs/~/x", TLSKey: "~user/k"}.Resolve()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(home, "a.creds"), o.Creds)
	require.Equal(t, filepath.Join(home, "ca.pem"), o.TLSCA)
	require.Equal(t, "/abs/~/x", o.TLSCert)
	require.Equal(t, "~user/k", o.TLSKey, "only the current user's home is expanded")
}

func TestResolveValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{User: "u", Password: "p", Creds: "x.creds"}, "conflicting credentials"},
		{Options{Creds: "x.creds", NKey: "x.nk"}, "conflicting credentials"},
		{Options{Password: "p"}, "a password needs a user"},
		{Options{TLSCert: "c.pem"}, "give both --tlscert and --tlskey"},
		{Options{TLSKey: "k.pem"}, "give both --tlscert and --tlskey"},
	} {
		_, err := tc.o.Resolve()
		require.ErrorContains(t, err, tc.want, "%+v", tc.o)
		_, err = tc.o.NATSOptions(nil, nil)
		require.ErrorContains(t, err, tc.want, "NATSOptions(%+v)", tc.o)
	}
}

func TestResolveReadsNamedContextAndExplicitFieldsWin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeContext(t, dir, "prod", `{
  "description": "prod", "url": "nats://prod:4222", "user": "ops", "password": "pw",
  "cert": "/etc/jw/cert.pem", "key": "/etc/jw/key.pem", "ca": "file:///etc/jw/ca.pem",
  "inbox_prefix": "_INBOX_ops", "jetstream_domain": "hub", "jetstream_api_prefix": "",
  "tls_first": true, "color_scheme": "", "windows_ca_certs_match": null}`)

	o, err := Options{Context: "prod", ContextDir: dir}.Resolve()
	require.NoError(t, err)
	require.Equal(t, Options{
		Servers: "nats://prod:4222", User: "ops", Password: "pw",
		TLSCert: "/etc/jw/cert.pem", TLSKey: "/etc/jw/key.pem", TLSCA: "/etc/jw/ca.pem", TLSFirst: true,
		InboxPrefix: "_INBOX_ops", JSDomain: "hub", Context: "prod", ContextDir: dir,
	}, o)

	// Explicit fields win one by one...
	o, err = Options{Context: "prod", ContextDir: dir, Servers: "nats://other:4222", User: "me", Password: "mine", TLSCA: "/my/ca.pem"}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "nats://other:4222", o.Servers)
	require.Equal(t, "me", o.User)
	require.Equal(t, "mine", o.Password)
	require.Equal(t, "/my/ca.pem", o.TLSCA)
	require.Equal(t, "/etc/jw/cert.pem", o.TLSCert)

	// ...but credentials as a group: explicit creds drop the context's
	// user and password rather than conflicting with them.
	o, err = Options{Context: "prod", ContextDir: dir, Creds: "/my/x.creds"}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "/my/x.creds", o.Creds)
	require.Empty(t, o.User)
	require.Empty(t, o.Password)
}

func TestResolveContextByPathSecretsAndVariables(t *testing.T) {
	// t.Setenv: not parallel.
	dir := t.TempDir()
	t.Setenv("JW_TEST_PASSWORD", "from-env")
	t.Setenv("JW_TEST_DIR", "/secrets")
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("from-file\n"), 0o600))

	path := writeContext(t, dir, "envy", `{"user":"u","password":"env://JW_TEST_PASSWORD","token":"file://`+tokenFile+`","cert":"$JW_TEST_DIR/c.pem","key":"${JW_TEST_DIR}/k.pem"}`)
	// Like natscli, --context may name a context file.
	o, err := Options{Context: path}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "from-env", o.Password)
	require.Equal(t, "from-file", o.Token)
	require.Equal(t, "/secrets/c.pem", o.TLSCert)
	require.Equal(t, "/secrets/k.pem", o.TLSKey)

	writeContext(t, dir, "unset", `{"user":"u","password":"env://JW_TEST_UNSET_VARIABLE"}`)
	_, err = Options{Context: "unset", ContextDir: dir}.Resolve()
	require.ErrorContains(t, err, `password: environment variable "JW_TEST_UNSET_VARIABLE" is not set`)
}

func TestResolveRejectsWhatItCannotHonour(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"nsc":    `{"nsc":"nsc://op/acc/user"}`,
		"jwt":    `{"user_jwt":"eyJ...","user_seed":"SU..."}`,
		"socks":  `{"url":"nats://h:4222","socks_proxy":"socks5://p:1080"}`,
		"op":     `{"creds":"op://vault/item/creds"}`,
		"opPass": `{"user":"u","password":"op://vault/item/password"}`,
		"broken": `{"url":`,
	} {
		writeContext(t, dir, name, body)
		_, err := Options{Context: name, ContextDir: dir}.Resolve()
		require.Error(t, err, name)
		require.Contains(t, err.Error(), `nats context "`+name+`"`)
	}

	// Explicit credentials make the context's unsupported ones moot.
	_, err := Options{Context: "nsc", ContextDir: dir, Token: "t"}.Resolve()
	require.NoError(t, err)

	for _, name := range []string{"../prod", "a/b", `a\b`} {
		_, err := Options{Context: name, ContextDir: dir}.Resolve()
		require.ErrorContains(t, err, "invalid nats context name")
	}
}

func TestResolveUnknownContextListsAvailable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeContext(t, dir, "prod", `{}`)
	writeContext(t, dir, "dev", `{}`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.json"), 0o700))

	_, err := Options{Context: "staging", ContextDir: dir}.Resolve()
	require.ErrorIs(t, err, ErrUnknownContext)
	require.ErrorContains(t, err, filepath.Join(dir, "staging.json")+" does not exist")
	require.ErrorContains(t, err, "available: dev, prod")

	empty := filepath.Join(dir, "missing")
	_, err = Options{Context: "prod", ContextDir: empty}.Resolve()
	require.ErrorIs(t, err, ErrUnknownContext)
	require.ErrorContains(t, err, "no contexts in "+empty)
}

func TestDefaultContextDirFollowsXDG(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	dir, err := DefaultContextDir()
	require.NoError(t, err)
	require.Equal(t, "/xdg/nats/context", dir)

	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/jw")
	dir, err = DefaultContextDir()
	require.NoError(t, err)
	require.Equal(t, "/home/jw/.config/nats/context", dir)
}

func TestReconnectDelayBacksOffWithCapAndJitter(t *testing.T) {
	t.Parallel()
	for attempt, base := range map[int]time.Duration{
		0: 250 * time.Millisecond, 1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second,
		4: 2 * time.Second, 5: 2 * time.Second, 100: 2 * time.Second, 1 << 40: 2 * time.Second,
	} {
		for range 50 {
			d := reconnectDelay(attempt)
			require.GreaterOrEqual(t, d, base, "attempt %d", attempt)
			require.Less(t, d, base+base/5, "attempt %d", attempt)
		}
	}
}
