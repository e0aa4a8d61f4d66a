package auth

import (
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
	User    string    `json:"u"`
	ID      string    `json:"id"`
	Expires time.Time `json:"exp"`
}

// Sessions signs and checks session cookies. Replicas that share the key
// accept each other's sessions; sign-out is remembered by the replica
// that saw it until the session would have expired.
type Sessions struct {
	key     []byte
	csrfKey []byte
	ttl     time.Duration

	mu      sync.Mutex
	revoked map[string]time.Time // session id -> expiry
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
	mac := sha256.Sum256(append([]byte("jetwatch session v1\x00"), k...))
	// CSRF tokens get a key of their own: a token is never a valid
	// signature of anything a cookie carries.
	csrf := sha256.Sum256(append([]byte("jetwatch csrf v1\x00"), k...))
	return &Sessions{key: mac[:], csrfKey: csrf[:], ttl: ttl, revoked: map[string]time.Time{}}, nil
}

// TTL is how long a new session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// New starts a session for user and returns it with its cookie value.
func (s *Sessions) New(user string, now time.Time) (Session, string) {
	var id [16]byte
	rand.Read(id[:]) //nolint:errcheck // crypto/rand never fails on Linux
	sess := Session{User: user, ID: hex.EncodeToString(id[:]), Expires: now.Add(s.ttl).UTC().Truncate(time.Second)}
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
	if err := json.Unmarshal(body, &sess); err != nil || sess.User == "" || !now.Before(sess.Expires) {
		return Session{}, errBadSession
	}
	s.mu.Lock()
	_, gone := s.revoked[sess.ID]
	s.mu.Unlock()
	if gone {
		return Session{}, errBadSession
	}
	return sess, nil
}

// Revoke ends a session (sign-out) before it expires.
func (s *Sessions) Revoke(sess Session, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, id)
		}
	}
	s.revoked[sess.ID] = sess.Expires
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
