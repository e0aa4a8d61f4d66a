package collector

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	// klauspost's flate is nats.go's already, and compresses this text
	// in half the CPU time of compress/flate, 11% smaller (measured on
	// BenchmarkExposition's text at level 1).
	"github.com/klauspost/compress/flate"
)

// unitPoints is about how many series one unit of work holds: ~4 MB of
// text with the exporter's labels, small enough to keep every core busy
// and the buffers few.
const unitPoints = 8192

// segment is a range of one family's series; a family's first segment
// also writes its HELP and TYPE lines.
type segment struct {
	f        *family
	from, to int
	header   bool
}

// unit is the grain of writing and of parallel compression: segments of
// consecutive families, about unitPoints series in all.
type unit []segment

func (e *exposition) units() []unit {
	size := cmp.Or(e.unitPoints, unitPoints)
	var out []unit
	var cur unit
	n := 0
	for i := range e.families {
		f := &e.families[i]
		from := 0
		for {
			to := min(len(f.values), from+size-n)
			cur = append(cur, segment{f: f, from: from, to: to, header: from == 0})
			n += to - from
			from = to
			if n >= size {
				out, cur, n = append(out, cur), nil, 0
			}
			if from == len(f.values) {
				break
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// appendTo appends the unit in the Prometheus text format.
func (u unit) appendTo(b []byte) []byte {
	for _, s := range u {
		f := s.f
		if s.header {
			b = append(b, "# HELP "...)
			b = append(b, f.name...)
			b = append(b, ' ')
			b = append(b, f.help...)
			b = append(b, "\n# TYPE "...)
			b = append(b, f.name...)
			b = append(b, " gauge\n"...)
		}
		for i := s.from; i < s.to; i++ {
			if f.absent != nil && f.absent[i] {
				continue
			}
			l := &f.labels[i]
			b = append(b, f.name...)
			b = append(b, '{')
			b = append(b, l.head...)
			for j, part := range [2]string{l.stream, l.own} {
				if part != "" {
					if len(b) > 0 && b[len(b)-1] != '{' {
						b = append(b, ',')
					}
					if j == 1 && f.packedOwn {
						b = appendConsumerLabels(b, part)
					} else {
						b = append(b, part...)
					}
				}
			}
			b = append(b, '}', ' ')
			b = appendValue(b, f.values[i])
			b = append(b, '\n')
		}
	}
	return b
}

// appendValue writes integers (nearly every value) without the float
// formatter, which is both slower and writes 1e+06 for a million.
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

var textBuffers = sync.Pool{New: func() any { return new([]byte) }}

// writeText writes the exposition in the text format, one unit at a time.
func (e *exposition) writeText(w io.Writer) error {
	bp := textBuffers.Get().(*[]byte)
	defer textBuffers.Put(bp)
	for _, u := range e.units() {
		*bp = u.appendTo((*bp)[:0])
		if _, err := w.Write(*bp); err != nil {
			return err
		}
	}
	return nil
}

// gzipBody is an exposition compressed: raw DEFLATE blocks, each unit's
// ending in a sync flush and none final, so more can follow in the same
// stream; with the CRC-32 and length of the text, for the gzip trailer.
type gzipBody struct {
	blocks [][]byte
	crc    uint32
	size   int
}

// gzipped returns the compressed exposition, compressing it on first use;
// concurrent callers wait for the one compression.
func (e *exposition) gzipped() *gzipBody {
	e.gzOnce.Do(func() {
		e.gz = e.compress()
		e.compressed.Store(true)
	})
	return &e.gz
}

// compress compresses the units on every core, each unit on its own
// (pigz's way: a unit's matches stay within it, which costs little size
// at this unit length), and joins them in order.
func (e *exposition) compress() gzipBody {
	units := e.units()
	workers := max(1, min(runtime.GOMAXPROCS(0), len(units)))
	type result struct{ text, blocks []byte }
	results := make([]chan result, len(units))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	// A worker takes a slot before it takes the next unit, and the
	// joiner frees it once that unit is joined: the units in flight are
	// always the next ones to join, so at most 2 per worker are held.
	slots := make(chan struct{}, 2*workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			zw, _ := flate.NewWriter(nil, flate.BestSpeed) // cannot fail for a valid level
			var z bytes.Buffer
			for {
				slots <- struct{}{}
				i := int(next.Add(1) - 1)
				if i >= len(units) {
					<-slots
					return
				}
				bp := textBuffers.Get().(*[]byte)
				*bp = units[i].appendTo((*bp)[:0])
				z.Reset()
				zw.Reset(&z)
				zw.Write(*bp) //nolint:errcheck // writes to memory
				zw.Flush()    //nolint:errcheck // writes to memory
				// Kept until the next cycle: exactly its size.
				results[i] <- result{text: *bp, blocks: bytes.Clone(z.Bytes())}
			}
		})
	}
	var out gzipBody
	out.blocks = make([][]byte, 0, len(units))
	for i := range units {
		r := <-results[i]
		out.crc = crc32.Update(out.crc, crc32.IEEETable, r.text)
		out.size += len(r.text)
		out.blocks = append(out.blocks, r.blocks)
		text := r.text
		textBuffers.Put(&text)
		<-slots
	}
	wg.Wait()
	return out
}

// finalWriters compress what follows the blocks in a scrape; a writer
// is large to allocate (~800 KB), so they are reused.
var finalWriters = sync.Pool{New: func() any {
	zw, _ := flate.NewWriter(nil, flate.BestSpeed) // cannot fail for a valid level
	return zw
}}

// gzipHeader is a gzip member's header: deflate, no name, no time.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// writeGzip writes one gzip member: the body's blocks, then extra (text
// to append, compressed now) in the final block, and the trailer.
func (b *gzipBody) writeGzip(w io.Writer, extra []byte) error {
	if _, err := w.Write(gzipHeader); err != nil {
		return err
	}
	for _, blk := range b.blocks {
		if _, err := w.Write(blk); err != nil {
			return err
		}
	}
	zw := finalWriters.Get().(*flate.Writer)
	defer finalWriters.Put(zw)
	zw.Reset(w)
	if _, err := zw.Write(extra); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	crc := crc32.Update(b.crc, crc32.IEEETable, extra)
	size := uint32(b.size + len(extra)) //nolint:gosec // gzip keeps the length modulo 2^32
	trailer := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, crc), size)
	_, err := w.Write(trailer)
	return err
}
