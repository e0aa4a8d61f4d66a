package views

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// jsonIndent is the standard library's indentation, the reference.
func jsonIndent(t testing.TB, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Indent(&b, data, "", "  "))
	return b.String()
}

func TestPrettyJSONIndentsAsTheStandardLibrary(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{}`, `[]`, `1`, `"x"`, `null`, `{"a":[]}`, `{"a":{}}`, `[[],[{}]]`,
		`{"order":"ord-1","items":[{"sku":"a","qty":2},{"sku":"b\"]}","qty":1}],"ok":true,"n":null}`,
		" { \"a\" : [ 1 , 2 ,\n\t3 ] , \"b\\\\\" : \"c\\\"d\" } ",
		`["\u0000", "é", "\\", "\"", "{[,:]}"]`,
	} {
		got, note := PrettyJSON([]byte(in))
		require.Empty(t, note, in)
		require.Equal(t, jsonIndent(t, []byte(in)), got, in)
	}
}

// FuzzPrettyJSON checks the bounded indenter against json.Indent: the same
// text within the limits, the input unchanged with a reason past them.
func FuzzPrettyJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":null}]}`, `[[[[]]]]`, `"\"["`, ` [ ] `, strings.Repeat("[", 70) + strings.Repeat("]", 70)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		got, note := PrettyJSON(data)
		if note != "" {
			require.Equal(t, string(data), got)
			return
		}
		require.Equal(t, jsonIndent(t, data), got)
		require.LessOrEqual(t, len(got), maxPrettyGrowth*len(data)+prettySlack)
	})
}

func nested(depth int) []byte {
	return []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
}

func TestPayloadViewFallsBackToPlainText(t *testing.T) {
	t.Parallel()
	t.Run("deep", func(t *testing.T) {
		t.Parallel()
		data := nested(10_000)
		v := NewPayloadView(data)
		require.Equal(t, "json", v.Kind)
		require.Equal(t, string(data), v.Text)
		require.Contains(t, v.Note, "nested more than 64 levels deep")

		v = NewPayloadView(nested(MaxPrettyDepth))
		require.Empty(t, v.Note, "at the limit it is still indented")
		require.Equal(t, jsonIndent(t, nested(MaxPrettyDepth)), v.Text)
	})
	t.Run("growth", func(t *testing.T) {
		t.Parallel()
		// Short values 30 levels down gain 60 spaces each.
		data := []byte(strings.Repeat("[", 30) + strings.TrimSuffix(strings.Repeat("1,", 20_000), ",") + strings.Repeat("]", 30))
		v := NewPayloadView(data)
		require.Equal(t, string(data), v.Text)
		require.Contains(t, v.Note, "more than 4 times larger")
	})
	t.Run("large", func(t *testing.T) {
		t.Parallel()
		data := []byte(`"` + strings.Repeat("x", MaxPrettyBytes) + `"`)
		v := NewPayloadView(data)
		require.Equal(t, "json", v.Kind)
		require.Equal(t, string(data), v.Text)
		require.Contains(t, v.Note, "larger than 1 MiB")
	})
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		data := bytes.Repeat([]byte{0, 0xff}, MaxHexBytes)
		v := NewPayloadView(data)
		require.Equal(t, "binary", v.Kind)
		require.Contains(t, v.Note, "the first 1 MiB of 2 MiB")
		require.Equal(t, MaxHexBytes/16, strings.Count(v.Text, "\n"), "one line per 16 bytes shown")

		v = NewPayloadView([]byte{0, 1, '<'})
		require.Empty(t, v.Note)
		require.Contains(t, v.Text, "00 01 3c")
	})
}

func TestDetailPageSaysWhyThePayloadIsPlain(t *testing.T) {
	t.Parallel()
	data := nested(10_000)
	m := DeadLetterDetail{D: store.DeadLetter{ID: 7, Status: store.StatusPending, Payload: data, Size: len(data), PayloadAvailable: true},
		Payload: NewPayloadView(data), CanAct: true}
	doc := render(t, Document(testPage(), DeadLetterBody(m)))
	notes := byTestID(doc, "dl-payload-note")
	require.Len(t, notes, 1)
	require.Contains(t, text(notes[0]), "not indented")
	require.Equal(t, string(data), text(byTestID(doc, "dl-payload")[0]))

	m.Payload = NewPayloadView([]byte(`{"a":1}`))
	require.Empty(t, byTestID(render(t, Document(testPage(), DeadLetterBody(m))), "dl-payload-note"))
}

func TestDiff(t *testing.T) {
	t.Parallel()
	ops := func(v DiffView) string {
		var b strings.Builder
		for _, l := range v.Lines {
			b.WriteString(l.Op + l.Text + "|")
		}
		return b.String()
	}
	t.Run("small", func(t *testing.T) {
		t.Parallel()
		v := Diff("a\nb\nc\nd", "a\nB\nc\nd\ne")
		require.Empty(t, v.Note)
		require.Equal(t, " a|-b|+B| c| d|+e|", ops(v))
		require.Equal(t, " x|", ops(Diff("x", "x")))
		require.Equal(t, "-|+y|", ops(Diff("", "y")))
	})
	t.Run("long lines", func(t *testing.T) {
		t.Parallel()
		// Lines sharing long prefixes are compared as numbers.
		long := strings.Repeat("x", 1<<10)
		var a, b []string
		for i := range 1000 {
			a = append(a, long+string(rune('a'+i%26)))
			b = append(b, long+string(rune('a'+(i+1)%26)))
		}
		v := Diff(strings.Join(a, "\n"), strings.Join(b, "\n"))
		require.Empty(t, v.Note)
		n := 0
		for _, l := range v.Lines {
			if l.Op == " " {
				n++
			}
		}
		require.Greater(t, n, 900, "most lines match shifted by one")
	})
	t.Run("too many changed lines", func(t *testing.T) {
		t.Parallel()
		a := "head\n" + strings.Repeat("a\n", 2000) + "tail"
		b := "head\n" + strings.Repeat("b\n", 2000) + "tail"
		v := Diff(a, b)
		require.Contains(t, v.Note, "shown as removed, then added")
		require.Equal(t, DiffLine{" ", "head"}, v.Lines[0])
		require.Equal(t, DiffLine{"-", "a"}, v.Lines[1])
		require.Equal(t, DiffLine{"+", "b"}, v.Lines[2001])
		require.Equal(t, DiffLine{" ", "tail"}, v.Lines[len(v.Lines)-1])
		require.Len(t, v.Lines, 4002)
	})
	t.Run("too many lines", func(t *testing.T) {
		t.Parallel()
		a, b := strings.Repeat("\n", MaxDiffLines), "x"
		v := Diff(a, b)
		require.Contains(t, v.Note, "Too large to compare line by line")
		require.Equal(t, []DiffLine{{"-", a}, {"+", b}}, v.Lines)
	})
}

func TestEditPreviewShowsTheDiffNote(t *testing.T) {
	t.Parallel()
	m := DeadLetterDetail{D: store.DeadLetter{ID: 7, Status: store.StatusPending}, CanAct: true,
		Preview: &EditPreview{Subject: "orders.x", Payload: PayloadEdit{Diff: Diff(strings.Repeat("\n", MaxDiffLines), "{}")}, HeaderDiff: Diff("", "")}}
	doc := render(t, Document(testPage(), DeadLetterBody(m)))
	require.Len(t, byTestID(doc, "dl-payload-diff-note"), 1)
	require.Empty(t, byTestID(doc, "dl-header-diff-note"))
}
