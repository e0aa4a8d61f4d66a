package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/ensure"
	"github.com/jetwatch/jetwatch/internal/natsname"
)

// DefaultTokenBucket is the KV bucket API tokens are kept in.
const DefaultTokenBucket = "jetwatch_tokens"

// tokenPrefix marks jetwatch tokens, so secret scanners can find a leaked
// one and a pasted NATS token is told apart.
const tokenPrefix = "jwat_"

// Token is an API bearer token as stored: its secret is kept only as a
// SHA-256 hash (a 256-bit random secret needs no slow hash).
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Hash      string    `json:"hash"`
}

// ErrBadToken is the one answer to an unknown, revoked or malformed token.
var ErrBadToken = errors.New("unknown or revoked API token")

// ErrTokensUnavailable answers while the token bucket is not open yet
// (NATS not reached, or a permission missing: the log says which).
var ErrTokensUnavailable = errors.New("API tokens are not available until jetwatch reaches NATS")

// Tokens keeps API tokens in a KV bucket shared by every jetwatch replica
// and by `jetwatch token`. A watch keeps a copy in memory, so checking a
// token costs no round trip and a revocation reaches every replica within
// moments.
type Tokens struct {
	js       jetstream.JetStream
	bucket   string
	replicas int

	mu     sync.RWMutex
	kv     jetstream.KeyValue // set by Start
	byID   map[string]Token
	synced bool
	err    error
	stop   context.CancelFunc
	done   chan struct{}
}

// NewTokens returns the tokens of bucket (DefaultTokenBucket when empty),
// asking NATS nothing until Start: before, every method answers
// ErrTokensUnavailable.
func NewTokens(js jetstream.JetStream, bucket string, replicas int) *Tokens {
	return &Tokens{js: js, bucket: cmp.Or(bucket, DefaultTokenBucket), replicas: max(replicas, 1), byID: map[string]Token{}}
}

// OpenTokens opens (creating if missing) the token bucket, for a command
// that uses it once: no copy is kept in memory.
func OpenTokens(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Tokens, error) {
	t := NewTokens(js, bucket, replicas)
	return t, t.open(ctx)
}

func (t *Tokens) open(ctx context.Context) error {
	kv, err := ensure.KeyValue(ctx, t.js, jetstream.KeyValueConfig{Bucket: t.bucket,
		Description: "jetwatch API tokens (hashed)", Replicas: t.replicas})
	if err != nil {
		return fmt.Errorf("open KV bucket %s for API tokens (needs permission on $JS.API.STREAM.*.KV_%s): %w", t.bucket, t.bucket, err)
	}
	t.mu.Lock()
	t.kv = kv
	t.mu.Unlock()
	return nil
}

// Start opens (creating if missing) the token bucket and keeps a copy in
// memory current until Stop. A failed Start may be tried again.
func (t *Tokens) Start(ctx context.Context) error {
	if err := t.open(ctx); err != nil {
		return err
	}
	kv, _ := t.bucketKV()
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return fmt.Errorf("watch KV bucket %s: %w", t.bucket, err)
	}
	done := make(chan struct{})
	t.mu.Lock()
	t.stop, t.done = cancel, done
	t.mu.Unlock()
	go func() {
		defer close(done)
		t.follow(wctx, w)
	}()
	return nil
}

// Stop ends the watch Start began.
func (t *Tokens) Stop() {
	t.mu.Lock()
	stop, done := t.stop, t.done
	t.stop = nil
	t.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// bucketKV is the bucket once open.
func (t *Tokens) bucketKV() (jetstream.KeyValue, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.kv == nil {
		return nil, ErrTokensUnavailable
	}
	return t.kv, nil
}

func (t *Tokens) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer w.Stop() //nolint:errcheck // nothing to do about it
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				t.mu.Lock()
				t.synced, t.err = false, errors.New("the watch of the token bucket ended")
				t.mu.Unlock()
				return
			}
			t.apply(e)
		}
	}
}

func (t *Tokens) apply(e jetstream.KeyValueEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e == nil { // the initial values are all in
		t.synced = true
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(t.byID, e.Key())
		return
	}
	var tok Token
	if err := json.Unmarshal(e.Value(), &tok); err != nil || tok.ID != e.Key() {
		delete(t.byID, e.Key())
		return
	}
	t.byID[tok.ID] = tok
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create makes a token named name with role and returns it and the bearer
// string, which is shown once and never stored.
func (t *Tokens) Create(ctx context.Context, name string, role Role, by string, now time.Time) (Token, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return Token{}, "", errors.New("a token needs a name of 1 to 100 characters saying what uses it (e.g. ci-redeliver)")
	}
	if role == NoRole {
		return Token{}, "", errors.New("a token needs a role: viewer, operator or admin")
	}
	var id [8]byte
	var secret [32]byte
	rand.Read(id[:])     //nolint:errcheck // crypto/rand never fails on Linux
	rand.Read(secret[:]) //nolint:errcheck
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	tok := Token{ID: hex.EncodeToString(id[:]), Name: name, Role: role, CreatedAt: now.UTC(), CreatedBy: by, Hash: hashSecret(s)}
	b, _ := json.Marshal(tok) //nolint:errchkjson // plain struct
	kv, err := t.bucketKV()
	if err != nil {
		return Token{}, "", err
	}
	if _, err := kv.Create(ctx, tok.ID, b); err != nil {
		return Token{}, "", fmt.Errorf("store the token: %w", err)
	}
	t.mu.Lock()
	t.byID[tok.ID] = tok // before the watch echoes it, so it works at once
	t.mu.Unlock()
	return tok, tokenPrefix + tok.ID + "_" + s, nil
}

// Revoke deletes the token with id.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if natsname.Key(id) != nil {
		return fmt.Errorf("no token with id %.40q", id)
	}
	kv, err := t.bucketKV()
	if err != nil {
		return err
	}
	if _, err := kv.Get(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("no token with id %q", id)
		}
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if err := kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	t.mu.Lock()
	delete(t.byID, id)
	t.mu.Unlock()
	return nil
}

// List returns every token (without secrets), newest first.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	kv, err := t.bucketKV()
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var out []Token
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var tok Token
		if json.Unmarshal(e.Value(), &tok) == nil {
			out = append(out, tok)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// Authenticate returns the token a bearer string belongs to.
func (t *Tokens) Authenticate(ctx context.Context, bearer string) (Token, error) {
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	if !ok {
		return Token{}, ErrBadToken
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || secret == "" {
		return Token{}, ErrBadToken
	}
	t.mu.RLock()
	tok, found := t.byID[id]
	synced := t.synced
	t.mu.RUnlock()
	if !synced && !found {
		// Not watching (or not yet): ask the bucket.
		kv, err := t.bucketKV()
		if err != nil {
			return Token{}, err
		}
		e, err := kv.Get(ctx, id)
		if err != nil {
			return Token{}, ErrBadToken
		}
		if json.Unmarshal(e.Value(), &tok) != nil {
			return Token{}, ErrBadToken
		}
		found = true
	}
	if !found || subtle.ConstantTimeCompare([]byte(tok.Hash), []byte(hashSecret(secret))) != 1 {
		return Token{}, ErrBadToken
	}
	return tok, nil
}
