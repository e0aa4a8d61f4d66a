// Package natsname validates subjects and names before they reach a NATS
// connection. The server closes a connection for good on a control line
// it cannot parse (a subject of thousands of bytes, a control character),
// so every subject jetwatch publishes or requests on, and every stream or
// consumer name it puts into an API subject, passes here first, whether an
// operator typed it or it came from a message, a header or an advisory.
package natsname

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSubjectLen bounds a subject jetwatch publishes to. The server's
// default max_control_line is 4 KiB and the publish line also holds a reply
// inbox and two sizes; real subjects are far shorter.
const MaxSubjectLen = 1024

// MaxNameLen is the server's limit for stream and consumer names.
const MaxNameLen = 255

// MaxKeyLen bounds a KV key jetwatch reads or writes. Its keys are ids
// and fingerprints of a few dozen bytes; a key from a URL can be any
// length, and it becomes part of a subject.
const MaxKeyLen = 256

// ErrInvalid is wrapped by every refusal.
var ErrInvalid = errors.New("invalid")

// Subject checks a literal subject to publish or request on: 1 to
// MaxSubjectLen bytes of UTF-8, tokens separated by single dots, no empty
// token, no wildcard, no white space or control character.
func Subject(s string) error {
	if err := common("subject", s, MaxSubjectLen); err != nil {
		return err
	}
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%w subject: an empty token (a leading, trailing or double dot)", ErrInvalid)
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%w subject: wildcards (* and >) are for subscriptions, give a full subject", ErrInvalid)
		}
	}
	return nil
}

// Filter checks a subject filter: like Subject, but * may be a whole token
// and > the last one.
func Filter(s string) error {
	if err := common("subject filter", s, MaxSubjectLen); err != nil {
		return err
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return fmt.Errorf("%w subject filter: an empty token (a leading, trailing or double dot)", ErrInvalid)
		case tok == "*":
		case tok == ">" && i == len(toks)-1:
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%w subject filter: * must be a whole token and > the last one", ErrInvalid)
		}
	}
	return nil
}

// Name checks a stream or consumer name as the server accepts it: 1 to 255
// bytes, no dot, wildcard, path separator, white space or control
// character.
func Name(s string) error {
	if err := common("name", s, MaxNameLen); err != nil {
		return err
	}
	if strings.ContainsAny(s, ".*>/\\") {
		return fmt.Errorf("%w name: dots, wildcards and path separators are not allowed", ErrInvalid)
	}
	return nil
}

func common(what, s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w %s: empty", ErrInvalid, what)
	case len(s) > limit:
		return fmt.Errorf("%w %s: %d bytes, at most %d", ErrInvalid, what, len(s), limit)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w %s: not UTF-8", ErrInvalid, what)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w %s: white space or a control character (%U)", ErrInvalid, what, r)
		}
	}
	return nil
}

// Key checks a KV key: 1 to MaxKeyLen bytes of letters, digits and
// -/_=., not starting or ending with a dot, without an empty token.
func Key(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w key: empty", ErrInvalid)
	case len(s) > MaxKeyLen:
		return fmt.Errorf("%w key: %d bytes, at most %d", ErrInvalid, len(s), MaxKeyLen)
	case s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, ".."):
		return fmt.Errorf("%w key: an empty token (a leading, trailing or double dot)", ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-/_=.", c) >= 0) {
			return fmt.Errorf("%w key: only letters, digits and -/_=. are allowed", ErrInvalid)
		}
	}
	return nil
}
