package views

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Limits on naming the JSON values an edit changed: past them the preview
// shows the line diff alone, with a note saying why.
const (
	// maxKeyLeaves is the most values (on each side) compared by path.
	maxKeyLeaves = 50_000
	// maxKeyPathBytes bounds the paths kept for one side: a payload nested
	// deep under long keys repeats them in every path below.
	maxKeyPathBytes = 8 << 20
	// maxKeysNamed is the most paths the summary names; the rest are counted.
	maxKeysNamed = 20
)

// PayloadEdit is an edited payload checked against the dead letter's
// original before it is sent.
//
// The edit form shows the payload as NewPayloadView formats it (indented
// JSON, text; nothing for binary), so the edit is compared with that same
// text: a payload the operator did not touch shows no change.
//
// An edit is unchanged when its text is the text the form showed (line
// ends aside, see NewPayloadEdit), or, for
// a JSON original, when it holds the same JSON tokens in the same order
// (only the white space between tokens differs: json.Compact of both is
// the same bytes). Values are not compared after parsing: 1.0 and 1, a
// reordered or repeated key, or an escaped letter may matter to the
// service that reads the message, so each counts as a change. An
// unchanged payload is sent as the original bytes (a compact original
// stays compact); a changed one is sent exactly as the edit's text.
type PayloadEdit struct {
	// Send is what the edit sends: the original's bytes when Unchanged,
	// else the edit's text.
	Send []byte
	// Unchanged says the edit changed nothing; WhiteSpace that its text
	// differs from what was shown only in white space between JSON tokens.
	Unchanged  bool
	WhiteSpace bool
	// Diff compares the text the form showed with the edit, line by line.
	Diff DiffView
	// Keys names the JSON values the edit changed, when both are JSON.
	Keys KeyChanges
}

// EditText is the text the edit form shows for a payload.
func EditText(p PayloadView) string {
	if p.Kind == "binary" || p.Decoded() {
		return ""
	}
	return p.Text
}

// NewPayloadEdit checks edited, the text posted from the edit form,
// against the original payload (available says the DLQ stream still holds
// it: an unavailable payload is replaced by whatever the edit holds).
//
// A textarea shows no line end, and browsers send each as CRLF: line ends
// alone never make a change, and a changed edit's are turned back into LF
// unless the text shown held a carriage return.
func NewPayloadEdit(original []byte, available bool, edited string) PayloadEdit {
	shown := EditText(NewPayloadView(original))
	if !strings.Contains(shown, "\r") {
		edited = strings.ReplaceAll(edited, "\r\n", "\n")
	}
	e := PayloadEdit{Send: []byte(edited)}
	if available {
		switch {
		case lineEndsAsLF(edited) == lineEndsAsLF(shown):
			e.Unchanged = true
		case json.Valid(original) && sameJSONTokens(original, []byte(edited)):
			e.Unchanged, e.WhiteSpace = true, true
		}
		if e.Unchanged {
			e.Send = original
			return e
		}
	}
	e.Diff = Diff(shown, edited)
	if available && json.Valid(original) && json.Valid(e.Send) {
		e.Keys = changedKeys(original, e.Send)
	}
	return e
}

// lineEndsAsLF is s with every CRLF and CR as LF, as a textarea shows it.
func lineEndsAsLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// sameJSONTokens says whether a and b, both valid JSON (b is checked
// here), are the same tokens in the same order.
func sameJSONTokens(a, b []byte) bool {
	if len(a) > MaxPrettyBytes || len(b) > 4*MaxPrettyBytes || !json.Valid(b) {
		return false
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// KeyChanges names the JSON values an edit changed, added and removed, by
// path (order.items[0].qty); a value is a string, number, true, false,
// null or an empty object or array.
type KeyChanges struct {
	Changed, Added, Removed []string
	// More counts the paths past the first maxKeysNamed, not named.
	More int
	// Note says why no path is named although both sides are JSON.
	Note string
	// Compared says both sides are JSON and were compared.
	Compared bool
}

// changedKeys compares two valid JSON documents value by value. The work
// is linear in their sizes and bounded by maxKeyLeaves and maxKeyPathBytes.
func changedKeys(a, b []byte) KeyChanges {
	la, oka := flattenJSON(a)
	lb, okb := flattenJSON(b)
	if !oka || !okb {
		return KeyChanges{Compared: true, Note: "Too large or too deeply nested to name the changed values: the line diff shows them."}
	}
	before := make(map[string]string, len(la))
	for _, l := range la {
		before[l.path] = l.value
	}
	k := KeyChanges{Compared: true}
	named := 0
	add := func(list *[]string, path string) {
		if named == maxKeysNamed {
			k.More++
			return
		}
		named++
		*list = append(*list, displayPath(path))
	}
	after := make(map[string]bool, len(lb))
	for _, l := range lb {
		after[l.path] = true
		switch v, ok := before[l.path]; {
		case !ok:
			add(&k.Added, l.path)
		case v != l.value:
			add(&k.Changed, l.path)
		}
	}
	for _, l := range la {
		if !after[l.path] {
			add(&k.Removed, l.path)
		}
	}
	return k
}

// displayPath is a path as the summary names it: the whole payload when
// the document is one value, and cut short past 120 bytes.
func displayPath(p string) string {
	if p == "" {
		return "(the whole payload)"
	}
	return Shorten(p, 120)
}

// leaf is one value of a JSON document with its path and its text as
// written.
type leaf struct{ path, value string }

// flattenJSON lists the values of valid JSON in document order. It gives
// up (false) past MaxPrettyDepth, maxKeyLeaves or maxKeyPathBytes.
func flattenJSON(src []byte) ([]leaf, bool) {
	w := jsonWalker{src: src}
	ok := w.value("", 0)
	return w.leaves, ok
}

type jsonWalker struct {
	src       []byte
	i         int
	leaves    []leaf
	pathBytes int
}

func (w *jsonWalker) space() {
	for w.i < len(w.src) {
		switch w.src[w.i] {
		case ' ', '\t', '\r', '\n':
			w.i++
		default:
			return
		}
	}
}

func (w *jsonWalker) leaf(path, value string) bool {
	w.pathBytes += len(path)
	if len(w.leaves) == maxKeyLeaves || w.pathBytes > maxKeyPathBytes {
		return false
	}
	w.leaves = append(w.leaves, leaf{path, value})
	return true
}

// value walks the value at w.i. The input is valid JSON, so each token is
// where the grammar puts it.
func (w *jsonWalker) value(path string, depth int) bool {
	w.space()
	switch w.src[w.i] {
	case '{':
		if depth == MaxPrettyDepth {
			return false
		}
		w.i++
		w.space()
		if w.src[w.i] == '}' {
			w.i++
			return w.leaf(path, "{}")
		}
		for {
			w.space()
			end := stringEnd(w.src, w.i)
			var key string
			if json.Unmarshal(w.src[w.i:end], &key) != nil {
				return false
			}
			w.i = end
			w.space()
			w.i++ // the colon
			if !w.value(joinKey(path, key), depth+1) {
				return false
			}
			w.space()
			c := w.src[w.i]
			w.i++ // a comma, or the end
			if c == '}' {
				return true
			}
		}
	case '[':
		if depth == MaxPrettyDepth {
			return false
		}
		w.i++
		w.space()
		if w.src[w.i] == ']' {
			w.i++
			return w.leaf(path, "[]")
		}
		for n := 0; ; n++ {
			if !w.value(path+"["+strconv.Itoa(n)+"]", depth+1) {
				return false
			}
			w.space()
			c := w.src[w.i]
			w.i++ // a comma, or the end
			if c == ']' {
				return true
			}
		}
	case '"':
		start := w.i
		w.i = stringEnd(w.src, w.i)
		return w.leaf(path, string(w.src[start:w.i]))
	default: // a number, true, false or null
		start := w.i
		for w.i < len(w.src) && !strings.ContainsRune(",]} \t\r\n", rune(w.src[w.i])) {
			w.i++
		}
		return w.leaf(path, string(w.src[start:w.i]))
	}
}

// joinKey adds an object key to a path: .name for a plain name, else
// ["quoted"].
func joinKey(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// KeyChangesText names the changed values in a line: "changed: a.b;
// added: c; removed: d (and 3 more)".
func KeyChangesText(k KeyChanges) string {
	var parts []string
	for _, g := range []struct {
		verb  string
		paths []string
	}{{"changed", k.Changed}, {"added", k.Added}, {"removed", k.Removed}} {
		if len(g.paths) > 0 {
			parts = append(parts, g.verb+": "+strings.Join(g.paths, ", "))
		}
	}
	s := strings.Join(parts, "; ")
	if k.More > 0 {
		s += " (and " + strconv.Itoa(k.More) + " more)"
	}
	if s == "" {
		// Both parse to the same values, written differently.
		return "No value changed: the JSON is written differently (white space, escapes or number forms), and is sent as written."
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// sizeText is a payload's size in bytes, exact.
func sizeText(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return Exact(n) + " bytes"
}
