package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// MinSessionKeyLength is the shortest session key accepted.
const MinSessionKeyLength = 32

// Session is a signed-in operator, carried in a cookie signed by the
// server. The role is not in it: it is looked up on every request, so
// removing a user or changing a role takes effect at once.
type Session struct {
	User string `json:"u"`
	// ID names the session: a sign-out is remembered by it.
	ID      string    `json:"id"`
	Expires time.Time `json:"exp"`
	// Boot names the Sessions (the jetwatch process) that started the
	// session: see SignOuts for why it matters.
	Boot string `json:"b,omitempty"`
}

// Sessions signs and checks session cookies. Replicas that share the key
// accept each other's sessions. A sign-out is remembered here until the
// session would have expired and, with SignOuts running, shared with
// every replica and with this one after a restart.
type Sessions struct {
	key     []byte
	csrfKey []byte
	ttl     time.Duration
	boot    string

	mu      sync.Mutex
	revoked map[string]time.Time // session id -> expiry
	pruned  int                  // len(revoked) after the last prune
	// shared is set while SignOuts shares sign-outs; read once it has
	// read every sign-out in the bucket.
	shared *SignOuts
	read   bool
}

// NewSessions signs with key (at least MinSessionKeyLength bytes), or with
// a random key when key is empty: then sessions end when jetwatch restarts
// and are not shared between replicas. ttl is how long a session lasts.
func NewSessions(key string, ttl time.Duration) (*Sessions, error) {
	k := []byte(key)
	if len(k) == 0 {
		k = make([]byte, 32)
		rand.Read(k) //nolint:errcheck // crypto/rand never fails on Linux
	} else if len(k) < MinSessionKeyLength {
		return nil, errors.New("the session key is too short: use at least 32 random characters (e.g. `openssl rand -hex 32`)")
	}
	if ttl <= 0 {
		return nil, errors.New("the session TTL must be positive (e.g. 12h)")
	}
	mac := sha256.Sum256(append([]byte("jetwatch session v1\x00"), k...))
	// CSRF tokens get a key of their own: a token is never a valid
	// signature of anything a cookie carries.
	csrf := sha256.Sum256(append([]byte("jetwatch csrf v1\x00"), k...))
	return &Sessions{key: mac[:], csrfKey: csrf[:], ttl: ttl, boot: randomHex(8), revoked: map[string]time.Time{}}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

// TTL is how long a new session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// New starts a session for user and returns it with its cookie value.
func (s *Sessions) New(user string, now time.Time) (Session, string) {
	sess := Session{User: user, ID: randomHex(16), Expires: now.Add(s.ttl).UTC().Truncate(time.Second), Boot: s.boot}
	body, _ := json.Marshal(sess) //nolint:errchkjson // plain struct
	enc := base64.RawURLEncoding.EncodeToString(body)
	return sess, enc + "." + s.sign(enc)
}

func (s *Sessions) sign(enc string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(enc))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errBadSession covers every way a cookie can be wrong; the caller only
// needs to know to sign in again.
var errBadSession = errors.New("session expired or invalid: sign in again")

// errSignOutsUnknown refuses a session started before this process while
// the shared sign-outs have not been read yet.
var errSignOutsUnknown = errors.New("sign-outs are not known yet (NATS has not answered since jetwatch started): sign in again")

// ttlSlack allows for clocks of replicas a little apart.
const ttlSlack = time.Minute

// Check verifies a cookie value and returns its session.
func (s *Sessions) Check(value string, now time.Time) (Session, error) {
	enc, sig, ok := strings.Cut(value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.sign(enc))) {
		return Session{}, errBadSession
	}
	body, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return Session{}, errBadSession
	}
	var sess Session
	if err := json.Unmarshal(body, &sess); err != nil || sess.User == "" || sess.ID == "" || !now.Before(sess.Expires) {
		return Session{}, errBadSession
	}
	if sess.Expires.After(now.Add(s.ttl + ttlSlack)) {
		// Signed while sessions lasted longer: it ends as sessions do
		// now, and no sign-out needs remembering beyond today's TTL
		// (the shared bucket's).
		return Session{}, errBadSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.revoked) > 2*s.pruned+64 {
		s.pruneLocked(now)
	}
	if _, gone := s.revoked[sess.ID]; gone {
		return Session{}, errBadSession
	}
	if s.shared != nil && !s.read && sess.Boot != s.boot {
		return Session{}, errSignOutsUnknown
	}
	return sess, nil
}

// ErrSignOutNotShared says a sign-out took effect on this replica only,
// so far: other replicas (and this one after a restart) may accept the
// session until SignOuts gets it into the bucket, which it keeps trying.
var ErrSignOutNotShared = errors.New("the sign-out is not shared with other jetwatch replicas yet")

// Revoke ends a session (sign-out) before it expires. The session ends on
// this replica at once, whatever the error; with SignOuts running, an
// error wrapping ErrSignOutNotShared says the other replicas do not know
// yet. ctx bounds the wait for NATS.
func (s *Sessions) Revoke(ctx context.Context, sess Session, now time.Time) error {
	s.mu.Lock()
	s.pruneLocked(now)
	s.revoked[sess.ID] = sess.Expires
	shared := s.shared
	s.mu.Unlock()
	if shared == nil {
		return nil
	}
	return shared.share(ctx, sess.ID, sess.Expires)
}

// remember records a sign-out made elsewhere.
func (s *Sessions) remember(id string, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.revoked[id]; !ok || expires.After(old) {
		s.revoked[id] = expires
	}
}

// pruneLocked forgets sign-outs of sessions that have expired anyway.
func (s *Sessions) pruneLocked(now time.Time) {
	for id, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, id)
		}
	}
	s.pruned = len(s.revoked)
}

// share attaches sign-outs; false when another already is.
func (s *Sessions) share(so *SignOuts) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared != nil && s.shared != so {
		return false
	}
	s.shared = so
	return true
}

// markRead records that every shared sign-out has been read once: from
// then on the sessions of other processes are accepted (those not signed
// out), even while NATS is unreachable.
func (s *Sessions) markRead() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.read = true
}

// CSRFToken is the token a signed-in operator's forms and scripts send
// back. It is derived from the session's id, so it is good for that
// session only: not for another operator's, not after sign-out, and
// not before sign-in. Replicas sharing the key derive the same token.
func (s *Sessions) CSRFToken(sess Session) string { return s.csrfMAC("session", sess.ID) }

// PreSessionCSRFToken is the sign-in form's token, before there is a
// session: derived from nonce, a random value the browser keeps in a
// cookie no other site can read or set, so a token copied from another
// browser's sign-in page is refused.
func (s *Sessions) PreSessionCSRFToken(nonce string) string {
	if nonce == "" {
		return ""
	}
	return s.csrfMAC("pre-session", nonce)
}

func (s *Sessions) csrfMAC(kind, value string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(kind + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
