package views

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// changedLines are a diff's lines other than context, as "op text".
func changedLines(v DiffView) []string {
	var out []string
	for _, l := range v.Lines {
		if l.Op != " " {
			out = append(out, l.Op+" "+l.Text)
		}
	}
	return out
}

func TestPayloadEditComparesWhatTheFormShowed(t *testing.T) {
	t.Parallel()
	compact := []byte(`{"order":"ord-1","items":[{"sku":"a","qty":1}],"note":null}`)
	shown := EditText(NewPayloadView(compact))
	require.Contains(t, shown, "\n  \"order\": \"ord-1\",\n", "the form shows indented JSON")

	t.Run("untouched, as a browser posts it", func(t *testing.T) {
		t.Parallel()
		for _, posted := range []string{shown, strings.ReplaceAll(shown, "\n", "\r\n")} {
			e := NewPayloadEdit(compact, true, posted)
			require.True(t, e.Unchanged)
			require.False(t, e.WhiteSpace)
			require.Equal(t, compact, e.Send, "the original, compact, byte for byte")
			require.Empty(t, e.Diff.Lines)
		}
	})
	t.Run("only white space between tokens", func(t *testing.T) {
		t.Parallel()
		for _, posted := range []string{string(compact), strings.ReplaceAll(shown, "  ", "\t"), shown + "\n\n"} {
			e := NewPayloadEdit(compact, true, posted)
			require.True(t, e.Unchanged, posted)
			require.True(t, e.WhiteSpace, posted)
			require.Equal(t, compact, e.Send)
		}
	})
	t.Run("one value changed", func(t *testing.T) {
		t.Parallel()
		posted := strings.Replace(shown, `"qty": 1`, `"qty": 2`, 1)
		e := NewPayloadEdit(compact, true, strings.ReplaceAll(posted, "\n", "\r\n"))
		require.False(t, e.Unchanged)
		require.Equal(t, posted, string(e.Send), "the edit's text exactly, with the textarea's line ends")
		require.Equal(t, []string{`-       "qty": 1`, `+       "qty": 2`}, changedLines(e.Diff), "that line only")
		require.Equal(t, KeyChanges{Compared: true, Changed: []string{"items[0].qty"}}, e.Keys)
		require.Equal(t, "Changed: items[0].qty.", KeyChangesText(e.Keys))
	})
	t.Run("forms of the same value are changes", func(t *testing.T) {
		t.Parallel()
		// 1.0 and 1, or an escaped letter, may matter to the service.
		e := NewPayloadEdit(compact, true, strings.Replace(shown, `"qty": 1`, `"qty": 1.0`, 1))
		require.False(t, e.Unchanged)
		require.Equal(t, []string{"items[0].qty"}, e.Keys.Changed)
		e = NewPayloadEdit(compact, true, strings.Replace(shown, `"order"`, `"\u006frder"`, 1))
		require.False(t, e.Unchanged)
		require.Empty(t, e.Keys.Changed)
		require.Contains(t, KeyChangesText(e.Keys), "No value changed")
	})
	t.Run("added, removed, odd keys", func(t *testing.T) {
		t.Parallel()
		posted := `{"order":"ord-1","items":[{"sku":"a","qty":1},{"sku":"b"}],"a.b c":{"x":[]}}`
		e := NewPayloadEdit(compact, true, posted)
		require.Equal(t, []string{"items[1].sku", `["a.b c"].x`}, e.Keys.Added)
		require.Equal(t, []string{"note"}, e.Keys.Removed)
		require.Equal(t, "Added: items[1].sku, [\"a.b c\"].x; removed: note.", KeyChangesText(e.Keys))
	})
	t.Run("not JSON any more", func(t *testing.T) {
		t.Parallel()
		e := NewPayloadEdit(compact, true, "oops")
		require.Equal(t, "oops", string(e.Send))
		require.False(t, e.Keys.Compared)
	})
}

func TestPayloadEditOfTextBinaryAndMissingPayloads(t *testing.T) {
	t.Parallel()
	text := []byte("line one\nline two\n")
	e := NewPayloadEdit(text, true, "line one\r\nline two\r\n")
	require.True(t, e.Unchanged)
	require.Equal(t, text, e.Send)
	e = NewPayloadEdit(text, true, "line one\r\nline 2\r\n")
	require.Equal(t, "line one\nline 2\n", string(e.Send))
	require.Equal(t, []string{"- line two", "+ line 2"}, changedLines(e.Diff))

	// A payload written with CR and CRLF: the textarea shows neither, and
	// the browser sends CRLF back. Untouched, the original is sent; edited,
	// the CRLF stay.
	crlf := []byte("\na\r\nb\rc\n")
	for _, posted := range []string{"\r\na\r\nb\r\nc\r\n", "\na\nb\nc\n"} {
		e = NewPayloadEdit(crlf, true, posted)
		require.True(t, e.Unchanged, "%q", posted)
		require.Equal(t, crlf, e.Send)
	}
	e = NewPayloadEdit(crlf, true, "\r\na\r\nB\r\nc\r\n")
	require.Equal(t, "\r\na\r\nB\r\nc\r\n", string(e.Send))

	// Binary shows as an empty textarea: left empty, the original is sent.
	bin := []byte{0, 0xff, 1}
	e = NewPayloadEdit(bin, true, "")
	require.True(t, e.Unchanged)
	require.Equal(t, bin, e.Send)

	// A payload the DLQ no longer holds is replaced by the edit, even empty.
	e = NewPayloadEdit(nil, false, "")
	require.False(t, e.Unchanged)
	require.NotNil(t, e.Send)
	require.Empty(t, e.Send)
	e = NewPayloadEdit(nil, false, `{"a":1}`)
	require.Equal(t, `{"a":1}`, string(e.Send))
	require.False(t, e.Keys.Compared, "nothing to compare with")
}

func TestChangedKeysAreBounded(t *testing.T) {
	t.Parallel()
	t.Run("deep", func(t *testing.T) {
		t.Parallel()
		deep := []byte(strings.Repeat(`{"a":`, MaxPrettyDepth+1) + "1" + strings.Repeat("}", MaxPrettyDepth+1))
		k := changedKeys(deep, []byte(`{}`))
		require.Contains(t, k.Note, "Too large or too deeply nested")
		require.Empty(t, k.Changed)
	})
	t.Run("many values", func(t *testing.T) {
		t.Parallel()
		many := []byte("[" + strings.TrimSuffix(strings.Repeat("1,", maxKeyLeaves+1), ",") + "]")
		require.Contains(t, changedKeys(many, []byte(`[]`)).Note, "Too large")
	})
	t.Run("long keys repeated in every path", func(t *testing.T) {
		t.Parallel()
		// 60 levels of 16 KiB keys above 1,000 values: each value's path
		// would be ~1 MB.
		key := `"` + strings.Repeat("k", 16<<10) + `"`
		var b strings.Builder
		for range 60 {
			b.WriteString("{" + key + ":")
		}
		b.WriteString("[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]")
		b.WriteString(strings.Repeat("}", 60))
		require.Contains(t, changedKeys([]byte(b.String()), []byte(`{}`)).Note, "Too large")
	})
	t.Run("many changes are counted past the first ones", func(t *testing.T) {
		t.Parallel()
		var a, b []string
		for i := range 50 {
			a = append(a, fmt.Sprintf(`"k%d":%d`, i, i))
			b = append(b, fmt.Sprintf(`"k%d":%d`, i, i+1))
		}
		k := changedKeys([]byte("{"+strings.Join(a, ",")+"}"), []byte("{"+strings.Join(b, ",")+"}"))
		require.Len(t, k.Changed, maxKeysNamed)
		require.Equal(t, 50-maxKeysNamed, k.More)
		require.Contains(t, KeyChangesText(k), "(and 30 more)")
	})
}

func TestEditPreviewSaysWhatIsSent(t *testing.T) {
	t.Parallel()
	orig := []byte(`{"a":1,"b":"x"}`)
	shown := EditText(NewPayloadView(orig))
	m := DeadLetterDetail{D: store.DeadLetter{ID: 7, Status: store.StatusPending, Payload: orig, PayloadAvailable: true},
		Payload: NewPayloadView(orig), CanAct: true}

	m.Preview = &EditPreview{Subject: "orders.x", Payload: NewPayloadEdit(orig, true, shown)}
	doc := render(t, Document(testPage(), DeadLetterBody(m)))
	require.Contains(t, text(byTestID(doc, "dl-payload-unchanged")[0]), "the original 15 bytes are sent as they were")
	require.Empty(t, byTestID(doc, "dl-payload-diff"))

	m.Preview = &EditPreview{Subject: "orders.x", Payload: NewPayloadEdit(orig, true, strings.Replace(shown, `"x"`, `"y"`, 1))}
	doc = render(t, Document(testPage(), DeadLetterBody(m)))
	require.Empty(t, byTestID(doc, "dl-payload-unchanged"))
	require.Equal(t, "Changed: b.", text(byTestID(doc, "dl-payload-keys")[0]))
	require.Contains(t, text(byTestID(doc, "dl-payload-sends")[0]), "Sends the edited text exactly")
	require.Contains(t, text(byTestID(doc, "dl-payload-diff")[0]), `- "b": "x" + "b": "y"`)
}

// BenchmarkPayloadEdit checks edits of the hostile and large payloads the
// detail page is benchmarked with: untouched (as a browser posts it), and
// with one value changed in the middle of the text shown.
func BenchmarkPayloadEdit(b *testing.B) {
	for _, p := range benchPayloads() {
		shown := EditText(NewPayloadView(p.data))
		untouched := strings.ReplaceAll(shown, "\n", "\r\n")
		mid := len(shown) / 2
		changed := shown[:mid] + "x" + shown[mid:]
		for _, c := range []struct{ name, edit string }{{"untouched", untouched}, {"one-change", changed}} {
			b.Run(p.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(p.data)))
				b.ReportAllocs()
				for b.Loop() {
					NewPayloadEdit(p.data, true, c.edit)
				}
			})
		}
	}
}
