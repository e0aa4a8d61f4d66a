package natsconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/logtest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// runServer starts an in-process server without JetStream: connecting
// needs none.
func runServer(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	return natstest.RunServer(t, func(o *server.Options) {
		o.JetStream = false
		if configure != nil {
			configure(o)
		}
	})
}

// checkFor polls fn until it returns nil, failing with its last error
// after timeout.
func checkFor(t *testing.T, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	natstest.CheckFor(t, timeout, interval, fn)
}

// connect connects through the package and closes the connection when the
// test ends.
func connect(t *testing.T, o Options, logger *slog.Logger, status *Status, extra ...nats.Option) *nats.Conn {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	nc, err := Connect(context.Background(), o, logger, status, extra...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func waitConnected(t *testing.T, status *Status) StatusSnapshot {
	t.Helper()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); !s.Connected {
			return fmt.Errorf("not connected: %+v", s)
		}
		return nil
	})
	return status.Snapshot()
}

func TestConnectWithUserPassword(t *testing.T) {
	t.Parallel()
	srv := runServer(t, func(o *server.Options) { o.Username, o.Password = "ops", "s3cret" })
	logger, logs := logtest.New()
	status := NewStatus()
	connect(t, Options{Servers: srv.ClientURL(), User: "ops", Password: "s3cret"}, logger, status)

	s := waitConnected(t, status)
	require.Equal(t, srv.ClientURL(), s.ServerURL)
	require.Equal(t, srv.Name(), s.ServerName)
	require.Empty(t, s.LastError)
	require.Contains(t, logs.String(), "nats connected")
}

func TestConnectWithWrongPasswordGivesUpWithAuthorizationError(t *testing.T) {
	t.Parallel()
	srv := runServer(t, func(o *server.Options) { o.Username, o.Password = "ops", "s3cret" })
	logger, logs := logtest.New()
	status := NewStatus()
	// The first connect retries in the background, so Connect succeeds;
	// nats.go gives up after the server rejects the same credentials
	// twice, and the status and the log say why.
	nc := connect(t, Options{Servers: srv.ClientURL(), User: "ops", Password: "wr0ng"}, logger, status)

	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); !s.Closed {
			return fmt.Errorf("not closed: %+v", s)
		}
		return nil
	})
	s := status.Snapshot()
	require.False(t, s.Connected)
	require.Equal(t, "nats: authorization violation", strings.ToLower(s.LastError))
	require.True(t, nc.IsClosed())
	require.ErrorIs(t, nc.LastError(), nats.ErrAuthorization)
	select {
	case <-status.Lost():
	default:
		t.Fatal("a connection closed by rejected credentials is lost for good")
	}
	checkFor(t, time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(strings.ToLower(logs.String()), `level=error msg="nats connection closed, not reconnecting" err="nats: authorization violation"`) {
			return fmt.Errorf("no error logged:\n%s", logs.String())
		}
		return nil
	})
	require.NotContains(t, logs.String(), "wr0ng")
}

func TestConnectWithToken(t *testing.T) {
	t.Parallel()
	srv := runServer(t, func(o *server.Options) { o.Authorization = "t0ken" })
	status := NewStatus()
	connect(t, Options{Servers: srv.ClientURL(), Token: "t0ken"}, nil, status)
	waitConnected(t, status)

	// natscli style: --user with no password is a token.
	status = NewStatus()
	connect(t, Options{Servers: srv.ClientURL(), User: "t0ken"}, nil, status)
	waitConnected(t, status)
}

func TestConnectWithContextFile(t *testing.T) {
	t.Parallel()
	srv := runServer(t, func(o *server.Options) { o.Username, o.Password = "ops", "s3cret" })
	dir := t.TempDir()
	writeContext(t, dir, "local", fmt.Sprintf(`{"description":"test","url":%q,"user":"ops","password":"s3cret"}`, srv.ClientURL()))
	writeContext(t, dir, "stale", fmt.Sprintf(`{"url":%q,"user":"ops","password":"old"}`, srv.ClientURL()))

	status := NewStatus()
	connect(t, Options{Context: "local", ContextDir: dir}, nil, status)
	waitConnected(t, status)

	// Explicit credentials override the context's.
	status = NewStatus()
	connect(t, Options{Context: "stale", ContextDir: dir, User: "ops", Password: "s3cret"}, nil, status)
	waitConnected(t, status)

	_, err := Connect(context.Background(), Options{Context: "missing", ContextDir: dir}, nil, nil)
	require.ErrorIs(t, err, ErrUnknownContext)
	require.ErrorContains(t, err, "available: local, stale")
}

func TestConnectWithNKeySeedFile(t *testing.T) {
	t.Parallel()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))

	srv := runServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	logger, logs := logtest.New()
	status := NewStatus()
	connect(t, Options{Servers: srv.ClientURL(), NKey: seedFile}, logger, status)
	waitConnected(t, status)
	require.NotContains(t, logs.String(), string(seed))

	_, err = Connect(context.Background(), Options{Servers: srv.ClientURL(), NKey: filepath.Join(t.TempDir(), "none.nk")}, nil, nil)
	require.ErrorContains(t, err, "nkey seed file")
}

func TestConnectWithMissingCredsFileFails(t *testing.T) {
	t.Parallel()
	_, err := Connect(context.Background(), Options{Creds: filepath.Join(t.TempDir(), "none.creds")}, nil, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "credentials file")
}

func TestConnectWithTLSClientCertificate(t *testing.T) {
	t.Parallel()
	files := writeTLSFiles(t)
	srv := runServer(t, func(o *server.Options) {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: files.serverCert, KeyFile: files.serverKey, CaFile: files.ca, Verify: true,
		})
		require.NoError(t, err)
		o.TLSConfig, o.TLSVerify = tc, true
	})

	status := NewStatus()
	nc := connect(t, Options{Servers: srv.ClientURL(), TLSCert: files.clientCert, TLSKey: files.clientKey, TLSCA: files.ca}, nil, status)
	waitConnected(t, status)
	state, err := nc.TLSConnectionState()
	require.NoError(t, err)
	require.True(t, state.HandshakeComplete)

	// Without a client certificate the server refuses; the status says so.
	status = NewStatus()
	connect(t, Options{Servers: srv.ClientURL(), TLSCA: files.ca}, nil, status)
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); s.Connected || s.LastError == "not connected yet" {
			return fmt.Errorf("no failure reported: %+v", s)
		}
		return nil
	})

	_, err = Connect(context.Background(), Options{Servers: srv.ClientURL(), TLSCA: filepath.Join(t.TempDir(), "none.pem")}, nil, nil)
	require.Error(t, err)
}

func TestStatusFollowsServerRestartOnSamePort(t *testing.T) {
	t.Parallel()
	port := natstest.RestartablePort(t)
	auth := func(o *server.Options) { o.Username, o.Password = "ops", "s3cret" }
	srv := runServer(t, func(o *server.Options) { auth(o); o.Port = port })
	logger, logs := logtest.New()
	status := NewStatus()
	// Credentials in the URL, to check they are never shown or logged.
	url := fmt.Sprintf("nats://ops:s3cret@127.0.0.1:%d", port)
	connect(t, Options{Servers: url}, logger, status)
	up := waitConnected(t, status)
	require.Equal(t, fmt.Sprintf("nats://127.0.0.1:%d", port), up.ServerURL)
	require.Zero(t, up.Reconnects)

	srv.Shutdown()
	srv.WaitForShutdown()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); s.Connected || s.LastError == "" {
			return fmt.Errorf("still connected: %+v", s)
		}
		return nil
	})
	down := status.Snapshot()
	require.True(t, down.Since.After(up.Since), "down since %s, up since %s", down.Since, up.Since)
	require.False(t, down.Closed)
	require.Equal(t, up.ServerURL, down.ServerURL, "the UI names the server that went away")

	srv2 := runServer(t, func(o *server.Options) { auth(o); o.Port = port })
	checkFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); !s.Connected {
			return fmt.Errorf("not reconnected: %+v", s)
		}
		return nil
	})
	again := status.Snapshot()
	require.Equal(t, uint64(1), again.Reconnects)
	require.Equal(t, srv2.Name(), again.ServerName)
	require.NotEqual(t, up.ServerName, again.ServerName)
	require.True(t, again.Since.After(down.Since))
	require.Empty(t, again.LastError)

	checkFor(t, time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "nats reconnected") {
			return errors.New("reconnect not logged")
		}
		return nil
	})
	require.Contains(t, logs.String(), "nats disconnected, reconnecting")
	require.NotContains(t, logs.String(), "s3cret")
}

func TestConnectWhileServerIsDownRetriesInBackground(t *testing.T) {
	t.Parallel()
	// Nothing listens there until the server starts, and no outgoing
	// connection is given it meanwhile.
	port := natstest.RestartablePort(t)

	logger, logs := logtest.New()
	status := NewStatus()
	nc := connect(t, Options{Servers: fmt.Sprintf("nats://127.0.0.1:%d", port)}, logger, status)
	require.False(t, nc.IsConnected())
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); s.LastError == "not connected yet" {
			return fmt.Errorf("no error yet: %+v", s)
		}
		return nil
	})
	s := status.Snapshot()
	require.False(t, s.Connected)
	require.Equal(t, fmt.Sprintf("nats://127.0.0.1:%d", port), s.ServerURL)
	require.Contains(t, logs.String(), "level=WARN msg=\"nats not reachable, retrying\"")

	srv := runServer(t, func(o *server.Options) { o.Port = port })
	up := waitConnected(t, status)
	require.Equal(t, srv.Name(), up.ServerName)
	require.Zero(t, up.Reconnects, "the first connection is not a reconnect")
}

func TestConnectHonoursCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Connect(ctx, Options{}, nil, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestHandlersComposeWithOthers(t *testing.T) {
	t.Parallel()
	srv := runServer(t, nil)

	// Handlers passed to Connect are kept alongside the status's.
	closed := make(chan struct{})
	status := NewStatus()
	nc := connect(t, Options{Servers: srv.ClientURL()}, nil, status, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	waitConnected(t, status)
	nc.Close()
	<-closed
	checkFor(t, time.Second, 10*time.Millisecond, func() error {
		if s := status.Snapshot(); !s.Closed || s.LastError != "connection closed" {
			return fmt.Errorf("status: %+v", s)
		}
		return nil
	})
	select {
	case <-status.Lost():
		t.Fatal("Close is not a lost connection")
	default:
	}

	// Status.Options on a connection built without NATSOptions, after a
	// handler of the same kind: both run.
	status = NewStatus()
	var mu sync.Mutex
	connected := 0
	nc, err := nats.Connect(srv.ClientURL(), append([]nats.Option{nats.ConnectHandler(func(*nats.Conn) {
		mu.Lock()
		connected++
		mu.Unlock()
	})}, status.Options()...)...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	waitConnected(t, status)
	checkFor(t, time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if connected != 1 {
			return fmt.Errorf("own handler ran %d times", connected)
		}
		return nil
	})
}

// tlsFiles are PEM files of a test CA and the certificates it signed.
type tlsFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// writeTLSFiles makes a self-signed CA, a server certificate for
// 127.0.0.1 and a client certificate, valid for an hour.
func writeTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	now := time.Now()
	template := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
	}

	caKey := newKey()
	caTmpl := template(1, "jetwatch test CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid = true, true
	caTmpl.KeyUsage |= x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, name string) (certPath, keyPath string) {
		key := newKey()
		tmpl := template(serial, cn)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		return write(name+"-cert.pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", keyDER)
	}
	f := tlsFiles{ca: write("ca.pem", "CERTIFICATE", caDER)}
	f.serverCert, f.serverKey = issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server")
	f.clientCert, f.clientKey = issue(3, "jetwatch", x509.ExtKeyUsageClientAuth, "client")
	return f
}

// A control line the server cannot parse makes it close the connection,
// and nats.go does not reconnect: Lost says so, so the process can act.
func TestServerClosingTheConnectionForGoodIsLost(t *testing.T) {
	t.Parallel()
	srv := runServer(t, nil)
	status := NewStatus()
	nc := connect(t, Options{Servers: srv.ClientURL()}, nil, status)
	waitConnected(t, status)
	require.NoError(t, nc.Publish(strings.Repeat("a", 5000), nil))
	_ = nc.Flush() // the answer is the server's error, or the closed connection
	select {
	case <-status.Lost():
	case <-time.After(10 * time.Second):
		t.Fatalf("not lost: %+v", status.Snapshot())
	}
	s := status.Snapshot()
	require.True(t, s.Closed)
	require.Contains(t, strings.ToLower(s.LastError), "maximum control line")
	require.True(t, nc.IsClosed())
}
