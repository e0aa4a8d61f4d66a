package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jetwatch/jetwatch/store"
)

// Redacted replaces every masked value.
const Redacted = "[redacted]"

// Redactor masks header values and JSON payload fields before a dead
// letter is shown, exported or logged. It never changes what is stored or
// redelivered.
type Redactor struct {
	headers map[string]bool
	fields  [][]string
	// keys are the last names of fields, the keys of the values masked,
	// for telling quickly that a payload holds none of them; unless
	// walkAlways (a last name "*", or one that is not ASCII).
	keys       [][]byte
	walkAlways bool
}

// New masks the values of the named headers (any case) and of the
// JSON fields given as dotted paths: "password" masks a field of that name
// at any depth, "card.number" a number inside a card at any depth, "*"
// matches any one name, and arrays are looked through. Names match in any
// case.
func New(headers, fields []string) (*Redactor, error) {
	r := &Redactor{headers: map[string]bool{}}
	for _, h := range headers {
		if h = strings.TrimSpace(h); h != "" {
			r.headers[strings.ToLower(h)] = true
		}
	}
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ".")
		for _, p := range parts {
			if p == "" {
				return nil, fmt.Errorf("redacted field %q: empty name between dots", f)
			}
		}
		r.fields = append(r.fields, parts)
		last := parts[len(parts)-1]
		r.keys = append(r.keys, []byte(last))
		if last == "*" || !isASCII(last) {
			r.walkAlways = true
		}
	}
	return r, nil
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// mayMask says whether p can hold a value r masks: one of the masked keys
// appears in it quoted, case ignored. Walking a payload's JSON costs tens
// of microseconds, and most payloads of a kind that holds no masked field
// are told apart in one pass. A payload with an escape (a key could be
// spelled with one) or with anything but ASCII (the walk matches keys by
// Unicode case folding, where "ſ" is an "s" and the Kelvin sign a "k")
// always may.
func (r *Redactor) mayMask(p []byte) bool {
	if r.walkAlways {
		return true
	}
	for _, c := range p {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	for i := 0; ; {
		q := bytes.IndexByte(p[i:], '"')
		if q < 0 {
			return false
		}
		i += q + 1
		for _, k := range r.keys {
			if end := i + len(k); end < len(p) && p[end] == '"' && bytes.EqualFold(p[i:end], k) {
				return true
			}
		}
	}
}

// Active reports whether anything is masked.
func (r *Redactor) Active() bool { return r != nil && (len(r.headers) > 0 || len(r.fields) > 0) }

// MasksPayloads reports whether payload fields are masked: a payload that
// cannot be read whole (cut short) cannot then be shown safely.
func (r *Redactor) MasksPayloads() bool { return r != nil && len(r.fields) > 0 }

// Fields names the payload fields masked, as matched (case folded),
// sorted and comma separated: "" when none. Two redactors with the same
// Fields mask the same payload values.
func (r *Redactor) Fields() string {
	if r == nil {
		return ""
	}
	names := make([]string, len(r.fields))
	for i, f := range r.fields {
		names[i] = strings.ToLower(strings.Join(f, "."))
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}

// Headers returns h with masked values, or h itself when nothing matched.
func (r *Redactor) Headers(h map[string][]string) (map[string][]string, bool) {
	if r == nil || len(r.headers) == 0 {
		return h, false
	}
	var out map[string][]string
	for name, vals := range h {
		if !r.headers[strings.ToLower(name)] {
			continue
		}
		if out == nil {
			out = make(map[string][]string, len(h))
			for k, v := range h {
				out[k] = v
			}
		}
		masked := make([]string, len(vals))
		for i := range masked {
			masked[i] = Redacted
		}
		out[name] = masked
	}
	if out == nil {
		return h, false
	}
	return out, true
}

// Payload returns a JSON payload with masked fields, keeping the order of
// everything else, or the payload itself when it is not JSON or nothing
// matched.
func (r *Redactor) Payload(p []byte) ([]byte, bool) {
	if r == nil || len(r.fields) == 0 || !r.mayMask(p) {
		return p, false
	}
	return r.maskPayload(p)
}

// maskPayload is Payload without the quick look for masked keys.
func (r *Redactor) maskPayload(p []byte) ([]byte, bool) {
	if !json.Valid(p) {
		return p, false
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var out bytes.Buffer
	changed, err := r.walk(dec, nil, &out)
	if err != nil || !changed {
		return p, false
	}
	return out.Bytes(), true
}

// DeadLetter returns d with its headers and payload masked, and whether
// anything was.
func (r *Redactor) DeadLetter(d store.DeadLetter) (store.DeadLetter, bool) {
	var hc, pc bool
	d.Headers, hc = r.Headers(d.Headers)
	d.Payload, pc = r.Payload(d.Payload)
	return d, hc || pc
}

func (r *Redactor) masks(path []string) bool {
	for _, f := range r.fields {
		if len(f) > len(path) {
			continue
		}
		tail := path[len(path)-len(f):]
		match := true
		for i, name := range f {
			if name != "*" && !strings.EqualFold(name, tail[i]) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// walk copies one JSON value from dec to out, masking matched fields.
func (r *Redactor) walk(dec *json.Decoder, path []string, out *bytes.Buffer) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	changed := false
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for first := true; dec.More(); first = false {
				kt, err := dec.Token()
				if err != nil {
					return false, err
				}
				key, ok := kt.(string)
				if !ok {
					return false, errors.New("object key is not a string")
				}
				if !first {
					out.WriteByte(',')
				}
				writeJSON(out, key)
				out.WriteByte(':')
				p := append(path[:len(path):len(path)], key)
				if r.masks(p) {
					if err := skipValue(dec); err != nil {
						return false, err
					}
					writeJSON(out, Redacted)
					changed = true
					continue
				}
				c, err := r.walk(dec, p, out)
				if err != nil {
					return false, err
				}
				changed = changed || c
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				c, err := r.walk(dec, path, out)
				if err != nil {
					return false, err
				}
				changed = changed || c
			}
			out.WriteByte(']')
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return false, err
		}
	case json.Number:
		out.WriteString(t.String())
	default:
		writeJSON(out, t)
	}
	return changed, nil
}

func writeJSON(out *bytes.Buffer, v any) {
	b, _ := json.Marshal(v) //nolint:errchkjson // strings, bools and nil always marshal
	out.Write(b)
}

// skipValue reads past one value, however deep.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}
