package views

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/jetwatch/jetwatch/store"
)

// benchPayloads are payloads shaped to stress the detail page: realistic
// JSON, binary, and the hostile shapes that once multiplied the page.
func benchPayloads() []struct {
	name string
	data []byte
} {
	const mib = 1 << 20
	var js strings.Builder
	js.WriteString("[")
	for i := 0; js.Len() < mib-200; i++ {
		if i > 0 {
			js.WriteString(",")
		}
		js.WriteString(`{"id":` + strconv.Itoa(i) + `,"sku":"sku-` + strconv.Itoa(i%977) +
			`","note":"fragile <handle> & \"care\"","qty":2,"tags":["a","b"],"ship":{"city":"Oslo","zip":"0150"}}`)
	}
	js.WriteString("]")
	r := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, mib)
	for i := range bin {
		bin[i] = byte(r.UintN(256))
	}
	var objs strings.Builder
	for range 5000 {
		objs.WriteString(`{"a":`)
	}
	objs.WriteString("1")
	objs.WriteString(strings.Repeat("}", 5000))
	return []struct {
		name string
		data []byte
	}{
		{"json-1MiB", []byte(js.String())},
		{"binary-1MiB", bin},
		{"nested-arrays-20KB", nested(10_000)},
		{"nested-objects-5000", []byte(objs.String())},
		{"json-quotes-1MiB", []byte(`[` + strings.TrimSuffix(strings.Repeat(`"",`, mib/3), ",") + `]`)},
		{"long-string-1MiB", []byte(`"` + strings.Repeat("<a&b>", mib/5) + `"`)},
		{"short-lines-1MiB", bytes.Repeat([]byte("a\n"), mib/2)},
		{"binary-quotes-1MiB", append(bytes.Repeat([]byte{'"'}, mib-1), 0)},
	}
}

// BenchmarkDeadLetterPage builds a dead letter's page model and renders it
// as an operator sees it (payload shown twice: the view and the edit box),
// reporting the page's size per payload byte.
func BenchmarkDeadLetterPage(b *testing.B) {
	for _, p := range benchPayloads() {
		b.Run(p.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				m := DeadLetterDetail{D: store.DeadLetter{ID: 7, Status: store.StatusPending, Payload: p.data, Size: len(p.data),
					PayloadAvailable: true, Stream: "ORDERS", Consumer: "billing", Subject: "orders.created"},
					Payload: NewPayloadView(p.data), CanAct: true}
				if err := Document(testPage(), DeadLetterBody(m)).Render(context.Background(), &buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(buf.Len())/float64(len(p.data)), "page-bytes/payload-byte")
		})
	}
}

// BenchmarkDiff is the edit preview's diff of a 1 MiB pretty JSON payload
// with a few lines changed, and of one with every line changed.
func BenchmarkDiff(b *testing.B) {
	orig, _ := PrettyJSON(benchPayloads()[0].data)
	lines := strings.Split(orig, "\n")
	few := strings.Join(append(append([]string{}, lines[:100]...), append([]string{`"changed": true,`}, lines[101:]...)...), "\n")
	b.Run("few-changed", func(b *testing.B) {
		b.SetBytes(int64(len(orig)))
		for b.Loop() {
			Diff(orig, few)
		}
	})
	short := strings.Repeat("a\n", 5000)
	other := strings.Repeat("b\n", 5000)
	b.Run("all-changed-10k-lines", func(b *testing.B) {
		for b.Loop() {
			Diff(short, other)
		}
	})
}
