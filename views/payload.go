package views

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on formatting a payload. A payload is hostile input: 20 KB of
// nested brackets once indented into a 400 MB page. Past a limit the
// payload is shown as sent, escaped, with a note saying why, so a dead
// letter's page stays within a small multiple of its payload.
const (
	// MaxPrettyBytes is the largest JSON payload that is indented.
	MaxPrettyBytes = 1 << 20
	// MaxPrettyDepth is the deepest nesting that is indented.
	MaxPrettyDepth = 64
	// maxPrettyGrowth and prettySlack bound the indented text to
	// maxPrettyGrowth times the payload plus prettySlack: short values
	// nested a few levels deep gain more indentation than they hold.
	maxPrettyGrowth = 4
	prettySlack     = 16 << 10
	// MaxHexBytes is how much of a binary payload the hex view shows;
	// the API has all of it.
	MaxHexBytes = 1 << 20
	// MaxDiffLines is the most lines (both sides together) the edit
	// preview compares line by line.
	MaxDiffLines = 20_000
	// maxDiffCells bounds the line-matching table of the changed middle
	// of a diff (its lines on one side times the other's).
	maxDiffCells = 1 << 20
)

// PayloadView is a payload shown decoded: pretty JSON, text, a binary
// format decoded to JSON (protobuf, msgpack, cbor), or hex.
type PayloadView struct {
	Kind string // json, text, protobuf, msgpack, cbor, binary, empty
	Text string
	// Type is the protobuf message type a payload was decoded as.
	Type string
	// Note says why the payload is not formatted as usual (too large,
	// too deep, cut short, not the type its subject maps to), empty when
	// it is.
	Note string
}

// Decoded says the view's text is a decoding of a binary payload into
// JSON, not the payload's own bytes: such text is never offered for
// editing, and redaction applies to it as to a JSON payload.
func (p PayloadView) Decoded() bool {
	return p.Kind == "protobuf" || p.Kind == "msgpack" || p.Kind == "cbor"
}

// ProtoDecoder decodes protobuf payloads by the message type their
// subject maps to. ok is false when no type is mapped to subject; err says
// why a payload is not the mapped type.
type ProtoDecoder interface {
	DecodeProto(subject string, data []byte) (typeName string, jsonText []byte, ok bool, err error)
}

// NewPayloadView decides how to show a payload without knowing its
// subject: as DecodePayload does, protobuf aside.
func NewPayloadView(data []byte) PayloadView { return DecodePayload(data, "", nil) }

// DecodePayload decides how to show a payload sent on subject: as the
// protobuf type proto maps subject to (when proto is set and the payload
// is that type), pretty JSON when it parses (within MaxPrettyBytes and
// MaxPrettyDepth), text when it is UTF-8, MessagePack or CBOR when it
// decodes whole as one, else hex (the first MaxHexBytes). Every path is
// bounded; a payload no decoder takes is shown as hex, never an error.
func DecodePayload(data []byte, subject string, proto ProtoDecoder) PayloadView {
	var protoNote string
	if len(data) > 0 && proto != nil && len(data) <= MaxPrettyBytes {
		typ, text, ok, err := proto.DecodeProto(subject, data)
		switch {
		case ok && err == nil:
			pretty, note := PrettyJSON(text)
			return PayloadView{Kind: "protobuf", Type: typ, Text: pretty, Note: note}
		case ok:
			protoNote = "Not a " + typ + " as --proto-types maps " + subject + ": " + err.Error() + "."
		}
	}
	v := plainPayloadView(data)
	if protoNote != "" {
		v.Note = strings.TrimSpace(protoNote + " " + v.Note)
	}
	return v
}

func plainPayloadView(data []byte) PayloadView {
	switch {
	case len(data) == 0:
		return PayloadView{Kind: "empty"}
	case json.Valid(data):
		text, note := PrettyJSON(data)
		return PayloadView{Kind: "json", Text: text, Note: note}
	case utf8.Valid(data) && !bytes.ContainsAny(data, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f"):
		return PayloadView{Kind: "text", Text: string(data)}
	}
	if len(data) <= MaxPrettyBytes {
		if kind, text, ok := binaryFormat(data); ok {
			pretty, note := PrettyJSON([]byte(text))
			return PayloadView{Kind: kind, Text: pretty, Note: note}
		}
	}
	if len(data) > MaxHexBytes {
		return PayloadView{Kind: "binary", Text: hex.Dump(data[:MaxHexBytes]),
			Note: "Showing the first " + Bytes(int64(MaxHexBytes)) + " of " + Bytes(int64(len(data))) +
				" in hex; GET /api/v1/dead-letters/{id} has the whole payload."}
	}
	return PayloadView{Kind: "binary", Text: hex.Dump(data)}
}

// PrettyJSON indents valid JSON two spaces a level, as json.Indent does.
// Past MaxPrettyBytes, MaxPrettyDepth or the growth bound it returns the
// JSON as it is, with a note saying why; the work is linear in the input
// and stops as soon as a limit is passed.
func PrettyJSON(data []byte) (text, note string) {
	if len(data) > MaxPrettyBytes {
		return string(data), "Shown as sent, not indented: larger than " + Bytes(int64(MaxPrettyBytes)) + "."
	}
	out, note := indent(data, maxPrettyGrowth*len(data)+prettySlack)
	if note != "" {
		return string(data), note
	}
	return string(out), ""
}

// indent indents valid JSON, giving up with a reason when nesting passes
// MaxPrettyDepth or the output passes budget bytes.
func indent(src []byte, budget int) ([]byte, string) {
	// Like json.Indent, keep trailing white space as it is.
	body := bytes.TrimRight(src, " \t\r\n")
	trailing := src[len(body):]
	src = body
	out := make([]byte, 0, min(budget, 2*len(src)+64))
	depth := 0
	open := false // just after { or [: the newline waits for a non-empty body
	newline := func(d int) {
		out = append(out, '\n')
		for range d {
			out = append(out, ' ', ' ')
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if open && c != ']' && c != '}' {
			newline(depth)
			open = false
		}
		switch c {
		case '"':
			end := stringEnd(src, i)
			out = append(out, src[i:end]...)
			i = end - 1
		case '{', '[':
			if depth++; depth > MaxPrettyDepth {
				return nil, "Shown as sent, not indented: nested more than " + strconv.Itoa(MaxPrettyDepth) + " levels deep."
			}
			out = append(out, c)
			open = true
		case '}', ']':
			depth--
			if open {
				open = false // an empty object or array stays on its line
			} else {
				newline(depth)
			}
			out = append(out, c)
		case ',':
			out = append(out, c)
			newline(depth)
		case ':':
			out = append(out, c, ' ')
		default:
			out = append(out, c)
		}
		if len(out) > budget {
			return nil, "Shown as sent, not indented: indenting would make it more than " + strconv.Itoa(maxPrettyGrowth) + " times larger."
		}
	}
	return append(out, trailing...), ""
}

// stringEnd is the index just past the JSON string starting at src[i].
func stringEnd(src []byte, i int) int {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(src)
}

// DiffView is the edit preview's comparison of the original and the edit:
// a line diff, or, when they are too large to compare line by line, their
// lines as removed and added with a note saying so.
type DiffView struct {
	Lines []DiffLine
	Note  string
}

// DiffLine is one line of a diff: Op is " ", "-" or "+".
type DiffLine struct{ Op, Text string }

// Diff is a line diff of a and b (longest common subsequence), enough for
// an operator to check an edit before it is sent. The work is bounded:
// past MaxDiffLines both texts are shown whole, and a changed middle too
// large to match line by line is shown as removed then added.
func Diff(a, b string) DiffView {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al)+len(bl) > MaxDiffLines {
		return DiffView{Lines: []DiffLine{{"-", a}, {"+", b}},
			Note: "Too large to compare line by line (" + strconv.Itoa(len(al)) + " and " + strconv.Itoa(len(bl)) +
				" lines): the original and the edit are shown whole."}
	}
	// Lines as numbers, so matching compares ints, not long strings.
	ids := make(map[string]int32, len(al))
	num := func(lines []string) []int32 {
		out := make([]int32, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = int32(len(ids))
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	an, bn := num(al), num(bl)
	// An edit usually changes a few lines in the middle: keep the common
	// head and tail out of the table.
	head := 0
	for head < len(an) && head < len(bn) && an[head] == bn[head] {
		head++
	}
	tail := 0
	for tail < len(an)-head && tail < len(bn)-head && an[len(an)-1-tail] == bn[len(bn)-1-tail] {
		tail++
	}
	var v DiffView
	for _, l := range al[:head] {
		v.Lines = append(v.Lines, DiffLine{" ", l})
	}
	am, bm := an[head:len(an)-tail], bn[head:len(bn)-tail]
	if len(am)*len(bm) > maxDiffCells {
		v.Note = "Too many changed lines to match one by one (" + strconv.Itoa(len(am)) + " and " + strconv.Itoa(len(bm)) +
			"): the changed part is shown as removed, then added."
		for _, l := range al[head : len(al)-tail] {
			v.Lines = append(v.Lines, DiffLine{"-", l})
		}
		for _, l := range bl[head : len(bl)-tail] {
			v.Lines = append(v.Lines, DiffLine{"+", l})
		}
	} else {
		v.Lines = append(v.Lines, lcsDiff(al[head:len(al)-tail], bl[head:len(bl)-tail], am, bm)...)
	}
	for _, l := range al[len(al)-tail:] {
		v.Lines = append(v.Lines, DiffLine{" ", l})
	}
	return v
}

// lcsDiff diffs lines a and b, given as numbers an and bn, by their
// longest common subsequence.
func lcsDiff(a, b []string, an, bn []int32) []DiffLine {
	w := len(bn) + 1
	lcs := make([]int32, (len(an)+1)*w)
	for i := len(an) - 1; i >= 0; i-- {
		for j := len(bn) - 1; j >= 0; j-- {
			if an[i] == bn[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	out := make([]DiffLine, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(an) && j < len(bn) {
		switch {
		case an[i] == bn[j]:
			out = append(out, DiffLine{" ", a[i]})
			i++
			j++
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			out = append(out, DiffLine{"-", a[i]})
			i++
		default:
			out = append(out, DiffLine{"+", b[j]})
			j++
		}
	}
	for ; i < len(an); i++ {
		out = append(out, DiffLine{"-", a[i]})
	}
	for ; j < len(bn); j++ {
		out = append(out, DiffLine{"+", b[j]})
	}
	return out
}
