package journey

import (
	"encoding/json"
	"unicode/utf8"
)

// maxDepth bounds the nesting skipped over; deeper is not a business
// event, and scanning stops there.
const maxDepth = 64

// jsonFields reads the top-level fields named in fields from a JSON
// object, in one pass over at most MaxScan bytes, without decoding the
// rest: vals[i] is field i's value when it is a string, number or boolean
// ("" otherwise or when absent). Malformed input ends the scan with what
// was found before it.
func jsonFields(data []byte, fields []string) []string {
	vals := make([]string, len(fields))
	if len(data) > MaxScan {
		data = data[:MaxScan]
	}
	s := scanner{b: data}
	s.space()
	if !s.byte('{') {
		return vals
	}
	found := 0
	for found < len(fields) {
		s.space()
		if s.peek() == '}' || s.i >= len(s.b) {
			return vals
		}
		key, ok := s.rawString()
		if !ok {
			return vals
		}
		s.space()
		if !s.byte(':') {
			return vals
		}
		s.space()
		want := -1
		for i, f := range fields {
			if vals[i] == "" && keyEquals(key, f) {
				want = i
				break
			}
		}
		if want >= 0 {
			v, ok := s.scalar()
			if !ok {
				return vals
			}
			if v != "" {
				vals[want] = v
				found++
			}
		} else if !s.skip(0) {
			return vals
		}
		s.space()
		if !s.byte(',') {
			return vals
		}
	}
	return vals
}

// keyEquals compares a raw (still escaped) JSON key with name. An
// escaped key is decoded first: rare, and allowed to allocate.
func keyEquals(raw []byte, name string) bool {
	for _, c := range raw {
		if c == '\\' {
			v, ok := unescape(raw)
			return ok && v == name
		}
	}
	return string(raw) == name
}

// unescape decodes a JSON string's escaped bytes (between the quotes).
func unescape(raw []byte) (string, bool) {
	b := make([]byte, 0, len(raw)+2)
	b = append(append(append(b, '"'), raw...), '"')
	var v string
	return v, json.Unmarshal(b, &v) == nil
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) byte(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// rawString reads a string and returns its bytes between the quotes,
// escapes undecoded.
func (s *scanner) rawString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, true
		default:
			s.i++
		}
	}
	return nil, false
}

// scalar reads a value: a string (decoded), a number or a boolean as
// written. Anything else (null, an object, an array) is skipped and gives
// "".
func (s *scanner) scalar() (string, bool) {
	switch c := s.peek(); {
	case c == '"':
		raw, ok := s.rawString()
		if !ok {
			return "", false
		}
		for _, c := range raw {
			if c == '\\' {
				if v, ok := unescape(raw); ok && utf8.ValidString(v) {
					return v, true
				}
				return "", true
			}
		}
		return string(raw), true
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f':
		start := s.i
		if !s.skip(0) {
			return "", false
		}
		v := string(s.b[start:s.i])
		if c == 't' && v != "true" || c == 'f' && v != "false" {
			return "", false
		}
		return v, true
	default:
		return "", s.skip(0)
	}
}

// skip passes over one value, nested ones included up to maxDepth.
func (s *scanner) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := s.peek(); c {
	case '"':
		_, ok := s.rawString()
		return ok
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.space()
		if s.byte(end) {
			return true
		}
		for {
			s.space()
			if c == '{' {
				if _, ok := s.rawString(); !ok {
					return false
				}
				s.space()
				if !s.byte(':') {
					return false
				}
				s.space()
			}
			if !s.skip(depth + 1) {
				return false
			}
			s.space()
			if s.byte(end) {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case 0:
		return false
	default:
		// A number or literal: up to the next delimiter.
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return false
	}
}
