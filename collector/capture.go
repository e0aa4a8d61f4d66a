package collector

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jetwatch/jetwatch/internal/natsname"
)

// ErrBadStreamPattern is wrapped by every refused --capture-streams pattern.
var ErrBadStreamPattern = errors.New("bad stream pattern")

// StreamPatterns says which streams the bridge copies failed messages
// from: stream names in which * stands for any run of characters (ORDERS,
// PAY*). No patterns means every user stream.
type StreamPatterns struct {
	patterns []string
}

// ParseStreamPatterns checks patterns as --capture-streams gives them.
func ParseStreamPatterns(patterns []string) (StreamPatterns, error) {
	for _, p := range patterns {
		// A pattern is a stream name but for its stars; the server's rules
		// for names say what else it may hold.
		if err := natsname.Name(strings.ReplaceAll(p, "*", "x")); err != nil {
			return StreamPatterns{}, fmt.Errorf("%w %q: give stream names, with * for any run of characters (like ORDERS,PAY*): %w",
				ErrBadStreamPattern, clip(p), err)
		}
	}
	return StreamPatterns{patterns: patterns}, nil
}

// Match says whether stream is one to copy from.
func (p StreamPatterns) Match(stream string) bool {
	if len(p.patterns) == 0 {
		return true
	}
	for _, pat := range p.patterns {
		if globMatch(pat, stream) {
			return true
		}
	}
	return false
}

// String lists the patterns as --capture-streams takes them.
func (p StreamPatterns) String() string {
	return strings.Join(p.patterns, ",")
}

// globMatch matches s against pattern, where * stands for any run of
// characters, possibly empty, and everything else for itself.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	// Between the fixed ends, take each middle part at its leftmost place:
	// what it leaves is the most room for the parts after it.
	s = s[len(first) : len(s)-len(last)]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return true
}

// protected says whether the bridge must never copy from stream: it is
// jetwatch's own (the configured advisory, DLQ and actions streams, and
// every JETWATCH_* stream such as the audit log), or holds a KV bucket or
// an object store (API tokens, breaker state, bulk jobs live there).
func (c StreamsConfig) protected(stream string) bool {
	switch {
	case stream == c.Advisories, stream == c.DLQ, stream == c.Actions:
		return true
	}
	for _, prefix := range []string{"JETWATCH_", "KV_", "OBJ_"} {
		if strings.HasPrefix(stream, prefix) {
			return true
		}
	}
	return false
}
