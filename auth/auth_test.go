package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

func TestUsersFileStoresOnlyHashesAndRereadsChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	require.NoError(t, AddUser(path, "alice", Operator, []byte("correct horse battery")))
	require.NoError(t, AddUser(path, "bob", Viewer, []byte("bob's long password")))

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "correct horse")
	require.Contains(t, string(raw), "alice:operator:$2")
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	users, err := OpenUsers(path)
	require.NoError(t, err)
	u, err := users.Authenticate("alice", "correct horse battery")
	require.NoError(t, err)
	require.Equal(t, Operator, u.Role)
	_, err = users.Authenticate("alice", "wrong")
	require.ErrorIs(t, err, ErrBadCredentials)
	_, err = users.Authenticate("mallory", "correct horse battery")
	require.ErrorIs(t, err, ErrBadCredentials)

	// Promote alice and remove bob: the running Users sees it.
	require.NoError(t, AddUser(path, "alice", Admin, []byte("a new long password")))
	require.NoError(t, RemoveUser(path, "bob"))
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if u, ok := users.Lookup("alice"); !ok || u.Role != Admin {
			return errors.New("alice is not admin yet")
		}
		if _, ok := users.Lookup("bob"); ok {
			return errors.New("bob still there")
		}
		return nil
	})

	// A broken file keeps the users read before, and says why.
	require.NoError(t, os.WriteFile(path, []byte("garbage line\n"), 0o600))
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if users.Err() == nil {
			return errors.New("no error yet")
		}
		return nil
	})
	require.Contains(t, users.Err().Error(), "line 1")
	_, ok := users.Lookup("alice")
	require.True(t, ok)
}

func TestAddUserRefusesWeakInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	require.ErrorContains(t, AddUser(path, "alice", Operator, []byte("short")), "at least 12")
	require.ErrorContains(t, AddUser(path, "al ice", Operator, []byte("long enough password")), "user name")
	require.ErrorContains(t, AddUser(path, "alice", NoRole, []byte("long enough password")), "role")
	_, err := OpenUsers(path)
	require.Error(t, err, "nothing was written")

	require.NoError(t, os.WriteFile(path, []byte("alice:operator:notahash\n"), 0o600))
	_, err = OpenUsers(path)
	require.ErrorContains(t, err, "not a bcrypt hash")
	require.NotContains(t, err.Error(), "notahash", "errors never quote hashes")
}

func TestSessionsSignExpireAndRevoke(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s, err := NewSessions(strings.Repeat("k", 32), time.Hour)
	require.NoError(t, err)
	sess, cookie := s.New("alice", now)
	got, err := s.Check(cookie, now.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, sess, got)

	_, err = s.Check(cookie, now.Add(time.Hour))
	require.Error(t, err, "expired")

	enc, sig, _ := strings.Cut(cookie, ".")
	forged := strings.Replace(enc, enc[:4], "AAAA", 1) + "." + sig
	_, err = s.Check(forged, now)
	require.Error(t, err, "tampered body")

	other, err := NewSessions(strings.Repeat("x", 32), time.Hour)
	require.NoError(t, err)
	_, err = other.Check(cookie, now)
	require.Error(t, err, "another key")

	require.NoError(t, s.Revoke(context.Background(), sess, now), "nothing to share without SignOuts")
	_, err = s.Check(cookie, now)
	require.Error(t, err, "signed out")

	// A cookie that outlasts today's TTL (signed when sessions lasted
	// longer) ends as sessions do now.
	long, err := NewSessions(strings.Repeat("k", 32), 48*time.Hour)
	require.NoError(t, err)
	_, longCookie := long.New("alice", now)
	_, err = long.Check(longCookie, now.Add(30*time.Hour))
	require.NoError(t, err)
	_, err = s.Check(longCookie, now)
	require.Error(t, err, "lasts longer than the TTL allows")

	// CSRF tokens: one per session, never the pre-session one, the same
	// on every replica with the key.
	sess2, _ := s.New("alice", now)
	require.NotEqual(t, s.CSRFToken(sess), s.CSRFToken(sess2))
	require.NotEqual(t, s.CSRFToken(sess), s.PreSessionCSRFToken(sess.ID))
	require.NotEqual(t, s.CSRFToken(sess), other.CSRFToken(sess))
	replica, err := NewSessions(strings.Repeat("k", 32), time.Hour)
	require.NoError(t, err)
	require.Equal(t, s.CSRFToken(sess), replica.CSRFToken(sess))
	require.Equal(t, s.PreSessionCSRFToken("n1"), replica.PreSessionCSRFToken("n1"))
	require.NotEqual(t, s.PreSessionCSRFToken("n1"), s.PreSessionCSRFToken("n2"))
	require.Empty(t, s.PreSessionCSRFToken(""), "no cookie, no token")

	_, err = NewSessions(strings.Repeat("k", 32), 0)
	require.ErrorContains(t, err, "TTL")

	_, err = NewSessions("short", time.Hour)
	require.ErrorContains(t, err, "too short")
}

func TestLockoutByNameAndAddress(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := NewLockout(3, 10*time.Minute)
	for i := range 3 {
		_, blocked := l.Blocked("alice", "10.0.0.1", now)
		require.False(t, blocked, "attempt %d", i)
		l.Failed("alice", "10.0.0.1", now)
	}
	until, blocked := l.Blocked("alice", "10.0.0.9", now.Add(time.Minute))
	require.True(t, blocked, "the name is locked from any address")
	require.Equal(t, now.Add(10*time.Minute), until)
	_, blocked = l.Blocked("bob", "10.0.0.1", now.Add(time.Minute))
	require.False(t, blocked, "others behind the same address may still sign in")
	_, blocked = l.Blocked("alice", "10.0.0.2", now.Add(10*time.Minute))
	require.False(t, blocked, "the lock ends after the window")

	// One address guessing many names is locked after 4x the failures.
	for i := range 3*AddressFactor - 3 {
		l.Failed(fmt.Sprintf("user%d", i), "10.0.0.1", now)
	}
	_, blocked = l.Blocked("bob", "10.0.0.1", now.Add(time.Minute))
	require.True(t, blocked, "the address is locked for any name")
	_, blocked = l.Blocked("bob", "10.0.0.2", now.Add(time.Minute))
	require.False(t, blocked)
}

func TestProxyTrustsOnlyItsAddresses(t *testing.T) {
	trusted, err := ParseCIDRs("10.1.0.0/16, 127.0.0.1")
	require.NoError(t, err)
	roles, err := ParseGroupRoles("sre=admin,payments=operator")
	require.NoError(t, err)
	p := &Proxy{UserHeader: "X-Forwarded-User", GroupsHeader: "X-Forwarded-Groups", Trusted: trusted, GroupRoles: roles}
	require.NoError(t, p.Check())

	h := http.Header{}
	h.Set("X-Forwarded-User", "carol")
	h.Set("X-Forwarded-Groups", "dev, payments")
	pr, ok, err := p.Identify("10.1.2.3:5555", h)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Principal{Name: "carol", Role: Operator, Method: "proxy"}, pr)
	require.Equal(t, "proxy:carol", pr.Actor())

	_, ok, _ = p.Identify("192.168.1.1:5555", h)
	require.False(t, ok, "headers from an untrusted address are ignored")

	h.Set("X-Forwarded-Groups", "dev")
	_, ok, err = p.Identify("127.0.0.1:1", h)
	require.True(t, ok)
	require.ErrorIs(t, err, ErrNoRole)

	_, err = ParseCIDRs("10.0.0.0/33")
	require.Error(t, err)
	_, err = ParseGroupRoles("sre=root")
	require.ErrorContains(t, err, "unknown role")
	require.Error(t, (&Proxy{UserHeader: "X-User"}).Check())
}

func TestTokensAreHashedSharedAndRevocable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)

	// Two replicas: one creates, the other (watching) accepts it.
	a := NewTokens(js, "", 1)
	require.NoError(t, a.Start(ctx))
	t.Cleanup(a.Stop)
	b := NewTokens(js, "", 1)
	require.NoError(t, b.Start(ctx))
	t.Cleanup(b.Stop)

	tok, bearer, err := a.Create(ctx, "ci-redeliver", Operator, "alice", time.Now())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(bearer, "jwat_"))

	kv, err := js.KeyValue(ctx, DefaultTokenBucket)
	require.NoError(t, err)
	e, err := kv.Get(ctx, tok.ID)
	require.NoError(t, err)
	// The secret is what follows "jwat_<id>_"; it may hold '_' itself.
	secret := strings.TrimPrefix(bearer, "jwat_"+tok.ID+"_")
	require.Greater(t, len(secret), 20)
	require.NotContains(t, string(e.Value()), secret, "the secret is stored hashed")

	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		_, err := b.Authenticate(ctx, bearer)
		return err
	})
	got, err := b.Authenticate(ctx, bearer)
	require.NoError(t, err)
	require.Equal(t, Operator, got.Role)
	require.Equal(t, "ci-redeliver", got.Name)

	_, err = b.Authenticate(ctx, bearer[:len(bearer)-1]+"x")
	require.ErrorIs(t, err, ErrBadToken)
	_, err = b.Authenticate(ctx, "not a token")
	require.ErrorIs(t, err, ErrBadToken)

	list, err := b.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.NoError(t, a.Revoke(ctx, tok.ID))
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if _, err := b.Authenticate(ctx, bearer); err == nil {
			return errors.New("revoked token still accepted")
		}
		return nil
	})
	require.ErrorContains(t, a.Revoke(ctx, tok.ID), "no token")
	// An id from a URL never reaches the connection unless it can be a key.
	for _, id := range []string{strings.Repeat("a", 5000), "a b", "a..b", "*", ">"} {
		require.ErrorContains(t, a.Revoke(ctx, id), "no token")
	}
	_, err = b.List(ctx)
	require.NoError(t, err, "the connection is still up")

	// Without a watch (the CLI), tokens are read from the bucket.
	_, bearer2, err := a.Create(ctx, "cli", Viewer, "alice", time.Now())
	require.NoError(t, err)
	c, err := OpenTokens(ctx, js, "", 1)
	require.NoError(t, err)
	got, err = c.Authenticate(ctx, bearer2)
	require.NoError(t, err)
	require.Equal(t, Viewer, got.Role)
}
