package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

func TestUserCommandsKeepOnlyHashes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	env := func(string) string { return "" }
	var out bytes.Buffer
	err := runIO(t.Context(), []string{"user", "add", "--users", path, "--role", "operator", "otto"}, env,
		strings.NewReader("correct horse battery\n"), &out)
	require.NoError(t, err)
	require.Contains(t, out.String(), "otto (operator) saved")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "correct horse")

	users, err := auth.OpenUsers(path)
	require.NoError(t, err)
	_, err = users.Authenticate("otto", "correct horse battery")
	require.NoError(t, err)

	err = runIO(t.Context(), []string{"user", "add", "--users", path, "--role", "root", "eve"}, env, strings.NewReader("long enough password\n"), &out)
	require.ErrorContains(t, err, "unknown role")
	err = runIO(t.Context(), []string{"user", "add", "--users", path, "--role", "viewer", "eve"}, env, strings.NewReader(""), &out)
	require.ErrorContains(t, err, "no password on stdin")

	out.Reset()
	require.NoError(t, runIO(t.Context(), []string{"user", "list", "--users", path}, env, nil, &out))
	require.Contains(t, out.String(), "otto")
	require.NoError(t, runIO(t.Context(), []string{"user", "remove", "--users", path, "otto"}, env, nil, &out))
	require.ErrorContains(t, runIO(t.Context(), []string{"user", "remove", "--users", path, "otto"}, env, nil, &out), "no user")
}

func TestTokenCommandsAgainstNATS(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	env := func(k string) string {
		if k == "NATS_URL" {
			return srv.ClientURL()
		}
		return ""
	}
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"token", "create", "--role", "operator", "ci-redeliver"}, env, &out))
	bearer := regexp.MustCompile(`jwat_[0-9a-f]{16}_\S+`).FindString(out.String())
	require.NotEmpty(t, bearer, out.String())
	out.Reset()
	require.NoError(t, run(t.Context(), []string{"token", "list"}, env, &out))
	require.Contains(t, out.String(), "ci-redeliver")
	require.Contains(t, out.String(), "operator")
	require.NotContains(t, out.String(), bearer[len(bearer)-10:], "list never shows secrets")
	id := bearer[5:21]
	require.NoError(t, run(t.Context(), []string{"token", "revoke", id}, env, &out))
	require.ErrorContains(t, run(t.Context(), []string{"token", "revoke", id}, env, &out), "no token")
	require.ErrorContains(t, run(t.Context(), []string{"token", "create", "--role", "boss", "x"}, env, &out), "unknown role")
}

// TestServeWithSignInOverHTTPS runs serve on a non-loopback address with
// a users file and a certificate: it starts (sign-in is configured),
// speaks HTTPS with HSTS, and sends anonymous pages to the sign-in page.
func TestServeWithSignInOverHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	require.NoError(t, auth.AddUser(users, "ada", auth.Admin, []byte("a long admin password")))
	certFile, keyFile := selfSigned(t, dir)
	nats := natstest.RunServer(t)
	env := func(k string) string {
		return map[string]string{"NATS_URL": nats.ClientURL(), "JETWATCH_SESSION_KEY": strings.Repeat("k", 32)}[k]
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--listen", "0.0.0.0:0", "--users", users,
			"--tls-cert", certFile, "--tls-key", keyFile}, env, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	var addr string
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		m := regexp.MustCompile(`dashboard: https://([^/]+)/`).FindStringSubmatch(out.String())
		if m == nil {
			return errors.New("not serving yet: " + out.String())
		}
		addr = m[1]
		return nil
	})
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // our own self-signed test certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Get("https://127.0.0.1:" + port + "/dead-letters")
	require.NoError(t, err)
	io.Copy(io.Discard, res.Body) //nolint:errcheck
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login?next=%2Fdead-letters", res.Header.Get("Location"))
	require.Equal(t, "max-age=31536000", res.Header.Get("Strict-Transport-Security"))
	for _, ck := range res.Cookies() {
		require.True(t, ck.Secure, "cookie %s over HTTPS is Secure", ck.Name)
	}
	res, err = client.Get("https://127.0.0.1:" + port + "/api/v1/streams")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	// Sign-outs are shared through a bucket that keeps each one as long
	// as a session lasts (--session-ttl, 12h by default).
	js, err := jetstream.New(natstest.Connect(t, nats))
	require.NoError(t, err)
	kv, err := js.KeyValue(t.Context(), auth.DefaultSignOutBucket)
	require.NoError(t, err)
	st, err := kv.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, 12*time.Hour, st.TTL())
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jetwatch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}
