package web

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkDeadLetterDetailPage serves a dead letter's page end to end:
// the index row from SQLite, headers and payload from the DLQ stream,
// the model and the render, for payloads just under the server's 1 MiB
// max_payload. It reports the page's size per payload byte.
func BenchmarkDeadLetterDetailPage(b *testing.B) {
	srv, d := setupDesk(b)
	const size = 1<<20 - 8<<10 // room for the envelope's headers
	var js strings.Builder
	js.WriteString("[")
	for i := 0; js.Len() < size-200; i++ {
		if i > 0 {
			js.WriteString(",")
		}
		js.WriteString(`{"id":` + strconv.Itoa(i) + `,"sku":"sku-` + strconv.Itoa(i%977) + `","note":"fragile <handle> & \"care\"","qty":2,"tags":["a","b"]}`)
	}
	js.WriteString("]")
	r := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, size)
	for i := range bin {
		bin[i] = byte(r.UintN(256))
	}
	for _, p := range []struct {
		name string
		data []byte
	}{
		{"json-1MiB", []byte(js.String())},
		{"binary-1MiB", bin},
		{"nested-arrays-20KB", []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000))},
	} {
		id := d.publishDeadLetter(b, p.data)
		b.Run(p.name, func(b *testing.B) {
			var n int
			b.SetBytes(int64(len(p.data)))
			for b.Loop() {
				rec := httptest.NewRecorder()
				srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dead-letters/"+u(id), nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
				n = rec.Body.Len()
			}
			b.ReportMetric(float64(n)/float64(len(p.data)), "page-bytes/payload-byte")
		})
	}
}
