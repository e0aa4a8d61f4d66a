package auth

import (
	"sync"
	"time"
)

// Lockout slows password guessing: after MaxFailures failed sign-ins for
// one user name within Window, or AddressFactor times as many from one
// address (many users may share a proxy's or an office's address), further
// attempts for that name or from that address are refused until Window
// has passed since the last failure. A success clears the name's failures.
type Lockout struct {
	MaxFailures int
	Window      time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
}

// NewLockout allows maxFailures failures per name and per address in window.
func NewLockout(maxFailures int, window time.Duration) *Lockout {
	return &Lockout{MaxFailures: maxFailures, Window: window, failures: map[string][]time.Time{}}
}

func (l *Lockout) recent(key string, now time.Time) []time.Time {
	ts := l.failures[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = ts
	return ts
}

// Blocked reports whether name or addr is locked out, and until when.
func (l *Lockout) Blocked(name, addr string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, key := range []string{"user:" + name, "addr:" + addr} {
		if ts := l.recent(key, now); len(ts) >= l.limit(key) {
			if u := ts[len(ts)-1].Add(l.Window); u.After(until) {
				until = u
			}
		}
	}
	return until, !until.IsZero()
}

// Failed records a failed sign-in.
func (l *Lockout) Failed(name, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 100_000 {
		// A flood of made-up names must not grow memory without bound.
		for k := range l.failures {
			l.recent(k, now)
		}
	}
	for _, key := range []string{"user:" + name, "addr:" + addr} {
		ts := l.recent(key, now)
		if len(ts) >= 2*l.limit(key) {
			ts = ts[1:]
		}
		l.failures[key] = append(ts, now)
	}
}

// AddressFactor is how many more failures an address may have than a name.
const AddressFactor = 4

func (l *Lockout) limit(key string) int {
	if key[0] == 'a' {
		return AddressFactor * l.MaxFailures
	}
	return l.MaxFailures
}

// Succeeded clears name's failures.
func (l *Lockout) Succeeded(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, "user:"+name)
}
