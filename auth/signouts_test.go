package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

var sessionKey = strings.Repeat("k", 32)

// sharingReplica is one jetwatch process's sessions, sharing sign-outs
// through srv, once it has read them.
func sharingReplica(t *testing.T, ctx context.Context, srv *server.Server, opts ...nats.Option) *Sessions {
	t.Helper()
	s, err := NewSessions(sessionKey, time.Hour)
	require.NoError(t, err)
	js, err := jetstream.New(natstest.Connect(t, srv, opts...))
	require.NoError(t, err)
	so, err := NewSignOuts(js, s, SignOutsConfig{Retry: 50 * time.Millisecond, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, so.Start(ctx))
	t.Cleanup(so.Stop)
	select {
	case <-so.Read():
	case <-time.After(10 * time.Second):
		t.Fatal("the sign-outs were not read")
	}
	return s
}

func refusedSoon(t *testing.T, s *Sessions, cookie string, now time.Time) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, err := s.Check(cookie, now); err == nil {
			return errors.New("the signed-out session is still accepted")
		}
		return nil
	})
}

func TestSignOutsReachEveryReplicaAndARestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := natstest.RunServer(t)
	now := time.Now()
	a, b := sharingReplica(t, ctx, srv), sharingReplica(t, ctx, srv)

	sess, cookie := a.New("alice", now)
	_, kept := a.New("bob", now)
	_, err := b.Check(cookie, now)
	require.NoError(t, err, "replicas with one key accept each other's sessions")

	require.NoError(t, a.Revoke(ctx, sess, now))
	_, err = a.Check(cookie, now)
	require.Error(t, err, "at once where it was signed out")
	refusedSoon(t, b, cookie, now)
	_, err = b.Check(kept, now)
	require.NoError(t, err, "only that session")

	// The bucket holds the session id with its expiry, for the session TTL.
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, DefaultSignOutBucket)
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Hour, st.TTL())
	e, err := kv.Get(ctx, sess.ID)
	require.NoError(t, err)
	require.Equal(t, sess.Expires.UTC().Format(time.RFC3339), string(e.Value()))

	// A restarted jetwatch (new process, same key) refuses it from the start.
	restarted := sharingReplica(t, ctx, srv)
	_, err = restarted.Check(cookie, now)
	require.Error(t, err)
	_, err = restarted.Check(kept, now)
	require.NoError(t, err)

	// Deleting the key revives nothing: a sign-out is never undone. A
	// later sign-out, seen after the delete, shows the delete was read.
	require.NoError(t, kv.Delete(ctx, sess.ID))
	later, laterCookie := a.New("carol", now)
	require.NoError(t, a.Revoke(ctx, later, now))
	refusedSoon(t, b, laterCookie, now)
	_, err = b.Check(cookie, now)
	require.Error(t, err)
}

func TestSignOutsWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	srv := natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.Restartable(t))
	port := srv.Addr().(*net.TCPAddr).Port
	reconnect := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
	a, b := sharingReplica(t, ctx, srv, reconnect...), sharingReplica(t, ctx, srv, reconnect...)
	now := time.Now()

	before, beforeCookie := a.New("alice", now)
	require.NoError(t, a.Revoke(ctx, before, now))
	refusedSoon(t, b, beforeCookie, now)

	srv.Shutdown()
	srv.WaitForShutdown()

	// The sign-out ends the session here and says the others do not know.
	sess, cookie := a.New("bob", now)
	err := a.Revoke(ctx, sess, now)
	require.ErrorIs(t, err, ErrSignOutNotShared)
	_, err = a.Check(cookie, now)
	require.Error(t, err)
	// The other replica keeps what it knew: the earlier sign-out, and
	// every session not signed out (nobody is locked out by the outage).
	_, err = b.Check(beforeCookie, now)
	require.Error(t, err)
	_, err = b.Check(cookie, now)
	require.NoError(t, err, "not known there until NATS is back")

	// NATS is back: the kept sign-out reaches the bucket and the other replica.
	natstest.RunServer(t, natstest.WithPort(port), natstest.WithStoreDir(dir))
	refusedSoon(t, b, cookie, now)
}

func TestSignOutsNotReadYet(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := natstest.RunServer(t)
	now := time.Now()
	earlier, err := NewSessions(sessionKey, time.Hour) // the process before a restart
	require.NoError(t, err)
	_, old := earlier.New("alice", now)

	// A JetStream API nobody answers: NATS unreachable since the start.
	s, err := NewSessions(sessionKey, time.Hour)
	require.NoError(t, err)
	js, err := jetstream.NewWithAPIPrefix(natstest.Connect(t, srv), "$JS.nowhere.API")
	require.NoError(t, err)
	so, err := NewSignOuts(js, s, SignOutsConfig{Retry: 20 * time.Millisecond, Logger: testLogger(t)})
	require.NoError(t, err)
	_, err = s.Check(old, now)
	require.NoError(t, err, "not sharing yet: as before")
	require.NoError(t, so.Start(ctx))
	t.Cleanup(so.Stop)
	require.Error(t, so.Start(ctx), "started once")

	_, err = s.Check(old, now)
	require.ErrorIs(t, err, errSignOutsUnknown, "it may have been signed out: sign in again")
	sess, own := s.New("alice", now)
	_, err = s.Check(own, now)
	require.NoError(t, err, "signing in again works without NATS")
	err = s.Revoke(ctx, sess, now)
	require.ErrorIs(t, err, ErrSignOutNotShared)
	_, err = s.Check(own, now)
	require.Error(t, err)
	select {
	case <-so.Read():
		t.Fatal("read sign-outs from nowhere")
	default:
	}
	so.Stop()
	so.Stop()
}

// testLogger writes to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
