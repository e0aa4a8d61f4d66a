package journey

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// ErrBadCorrelation is wrapped by every refused --correlate-by item.
var ErrBadCorrelation = errors.New("bad correlation")

// MaxKeyLen bounds a correlation value: a longer one is not a business id
// and is not indexed (cut short, two values could become one).
const MaxKeyLen = 128

// MaxScan bounds how much of a payload is read for JSON fields: a field
// past it is not found, and the payload is never read whole.
const MaxScan = 16 << 10

// Correlation is one --correlate-by item: where a message carries a
// correlation value, and the name journeys know it by.
type Correlation struct {
	// Name is what alert rules and pages call the value ("order").
	Name string
	// Header is the header that holds it, or "" for a JSON field.
	Header string
	// Field is the top-level JSON field that holds it, or "".
	Field string
}

// Correlations are the parsed --correlate-by items.
type Correlations []Correlation

// ParseCorrelations parses --correlate-by: comma-separated items
// "header:NAME" or "json:FIELD", each optionally led by "name=" to give
// values from several places one name (order=header:X-Order-Id,
// order=json:order_id). Without a name, an item is known by its header or
// field name.
func ParseCorrelations(spec string) (Correlations, error) {
	var out Correlations
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, where, named := strings.Cut(item, "=")
		if !named {
			where, name = item, ""
		}
		kind, what, ok := strings.Cut(where, ":")
		what = strings.TrimSpace(what)
		if !ok || what == "" || (kind != "header" && kind != "json") {
			return nil, fmt.Errorf("%w %q: give header:NAME or json:FIELD, optionally led by name= (like order=header:X-Order-Id,order=json:order_id)",
				ErrBadCorrelation, clip(item))
		}
		if len(what) > 64 || !printable(what) || strings.ContainsAny(what, " :=\"") {
			return nil, fmt.Errorf("%w %q: a header or field name is 1-64 printable characters without spaces, quotes, : or =", ErrBadCorrelation, clip(item))
		}
		name = strings.TrimSpace(cmpOr(name, what))
		if len(name) > 64 || !printable(name) || name == store.JourneyTraceName {
			return nil, fmt.Errorf("%w %q: the name is 1-64 printable characters, and not %q (trace ids are indexed as that)",
				ErrBadCorrelation, clip(item), store.JourneyTraceName)
		}
		c := Correlation{Name: name}
		if kind == "header" {
			c.Header = what
		} else {
			c.Field = what
		}
		out = append(out, c)
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// String gives the items back as --correlate-by takes them.
func (cs Correlations) String() string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		if c.Header != "" {
			parts[i] = c.Name + "=header:" + c.Header
		} else {
			parts[i] = c.Name + "=json:" + c.Field
		}
	}
	return strings.Join(parts, ",")
}

// Names lists the correlation names, each once.
func (cs Correlations) Names() []string {
	var out []string
	for _, c := range cs {
		if !contains(out, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Key is a value a message carries, under its name.
type Key struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Keys finds a message's trace id (from traceparent) and correlation
// values. Header values are the message's, hostile: a value that is
// empty, too long, not UTF-8 or holds control characters is left out.
// The payload is read only for JSON fields, and only its first MaxScan
// bytes. The same value under the same name is given once.
func (cs Correlations) Keys(h map[string][]string, payload []byte) []Key {
	var out []Key
	add := func(name, v string) {
		if !goodKey(v) {
			return
		}
		for _, k := range out {
			if k.Name == name && k.Value == v {
				return
			}
		}
		out = append(out, Key{name, v})
	}
	if tp := header(h, "traceparent"); tp != "" {
		if id := tracecontext.TraceIDField(tp); tracecontext.ValidTraceID(id) {
			add(store.JourneyTraceName, id)
		}
	}
	var fields []string
	for _, c := range cs {
		if c.Header != "" {
			add(c.Name, header(h, c.Header))
		} else {
			fields = append(fields, c.Field)
		}
	}
	if len(fields) > 0 {
		vals := jsonFields(payload, fields)
		for _, c := range cs {
			if c.Field == "" {
				continue
			}
			for i, f := range fields {
				if f == c.Field && vals[i] != "" {
					add(c.Name, vals[i])
				}
			}
		}
	}
	return out
}

// header is the first value of name: exactly as written, else in any case.
func header(h map[string][]string, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}

// ValidKey says whether v can be a journey key: what the index stores
// (a trace id or a correlation value) and a lookup may ask for.
func ValidKey(v string) bool { return goodKey(v) }

// goodKey says whether v may be indexed and shown as a key.
func goodKey(v string) bool {
	return v != "" && len(v) <= MaxKeyLen && utf8.ValidString(v) && printable(v)
}

// printable says whether s holds no control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return false
		}
	}
	return s != ""
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// KeyValues is Keys as the dead-letter index stores them: the values only.
func (cs Correlations) KeyValues(h nats.Header, payload []byte) []string {
	keys := cs.Keys(h, payload)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !contains(out, k.Value) {
			out = append(out, k.Value)
		}
	}
	return out
}
