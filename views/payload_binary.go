package views

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
)

// Binary formats recognised without a schema, shown as JSON: MessagePack
// and CBOR. Neither has a magic number, so a payload is taken for one only
// when it decodes whole, as one map or array (or a CBOR self-described
// value), within maxBinaryDepth, maxBinaryItems and the output budget of
// PrettyJSON; anything else is shown as hex. Values JSON lacks are
// written as objects: {"$bytes": base64}, {"$ext": type, "data": base64},
// {"$tag": n, "value": v}; non-string map keys become their JSON text.

const (
	maxBinaryDepth = MaxPrettyDepth
	maxBinaryItems = 100_000
)

var errNotFormat = errors.New("not this format")

// binaryDecoder writes one binary format's value as compact JSON.
type binaryDecoder struct {
	data   []byte
	pos    int
	out    bytes.Buffer
	budget int
	items  int
}

func (d *binaryDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.data)-d.pos {
		return nil, errNotFormat
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *binaryDecoder) uint(n int) (uint64, error) {
	b, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// count charges one value against the item and output bounds.
func (d *binaryDecoder) count() error {
	d.items++
	if d.items > maxBinaryItems || d.out.Len() > d.budget {
		return errNotFormat
	}
	return nil
}

// length reads a length the rest of the payload can hold: every element
// takes at least one byte, so a larger one is a lie.
func (d *binaryDecoder) length(n uint64) (int, error) {
	if n > uint64(len(d.data)-d.pos) {
		return 0, errNotFormat
	}
	return int(n), nil
}

func (d *binaryDecoder) str(b []byte) {
	s, _ := json.Marshal(string(b))
	d.out.Write(s)
}

func (d *binaryDecoder) bytesValue(b []byte) {
	d.out.WriteString(`{"$bytes":"`)
	d.out.WriteString(base64.StdEncoding.EncodeToString(b))
	d.out.WriteString(`"}`)
}

func (d *binaryDecoder) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.str([]byte(strconv.FormatFloat(f, 'g', -1, 64)))
		return
	}
	d.out.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
}

// key writes a map key: a string as is, anything else as its JSON text.
func (d *binaryDecoder) key(value func() error) error {
	start := d.out.Len()
	if err := value(); err != nil {
		return err
	}
	if k := d.out.Bytes()[start:]; len(k) == 0 || k[0] != '"' {
		text := string(k)
		d.out.Truncate(start)
		d.str([]byte(text))
	}
	d.out.WriteByte(':')
	return nil
}

// decodeWhole decodes all of data with value, or fails.
func decodeWhole(data []byte, value func(d *binaryDecoder, depth int) error) (string, bool) {
	d := &binaryDecoder{data: data, budget: maxPrettyGrowth*len(data) + prettySlack}
	if err := value(d, 0); err != nil || d.pos != len(data) {
		return "", false
	}
	return d.out.String(), true
}

// MessagePack.

func msgpackLooksLike(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	c := data[0]
	return c >= 0x80 && c <= 0x9f || c >= 0xdc && c <= 0xdf
}

func msgpackValue(d *binaryDecoder, depth int) error {
	if depth > maxBinaryDepth {
		return errNotFormat
	}
	if err := d.count(); err != nil {
		return err
	}
	b, err := d.take(1)
	if err != nil {
		return err
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		d.out.WriteString(strconv.Itoa(int(c)))
		return nil
	case c >= 0xe0:
		d.out.WriteString(strconv.Itoa(int(int8(c))))
		return nil
	case c >= 0x80 && c <= 0x8f:
		return msgpackMap(d, depth, uint64(c&0x0f))
	case c >= 0x90 && c <= 0x9f:
		return msgpackArray(d, depth, uint64(c&0x0f))
	case c >= 0xa0 && c <= 0xbf:
		s, err := d.take(int(c & 0x1f))
		d.str(s)
		return err
	}
	switch c {
	case 0xc0:
		d.out.WriteString("null")
	case 0xc2:
		d.out.WriteString("false")
	case 0xc3:
		d.out.WriteString("true")
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
		size := map[byte]int{0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4}[c]
		n, err := d.uint(size)
		if err != nil {
			return err
		}
		l, err := d.length(n)
		if err != nil {
			return err
		}
		s, _ := d.take(l)
		if c >= 0xd9 {
			d.str(s)
		} else {
			d.bytesValue(s)
		}
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		var l int
		if c >= 0xd4 {
			l = 1 << (c - 0xd4)
		} else {
			n, err := d.uint(1 << (c - 0xc7))
			if err != nil {
				return err
			}
			if l, err = d.length(n); err != nil {
				return err
			}
		}
		t, err := d.take(1)
		if err != nil {
			return err
		}
		data, err := d.take(l)
		if err != nil {
			return err
		}
		d.out.WriteString(`{"$ext":` + strconv.Itoa(int(int8(t[0]))) + `,"data":"` + base64.StdEncoding.EncodeToString(data) + `"}`)
	case 0xca:
		v, err := d.uint(4)
		if err != nil {
			return err
		}
		d.float(float64(math.Float32frombits(uint32(v))))
	case 0xcb:
		v, err := d.uint(8)
		if err != nil {
			return err
		}
		d.float(math.Float64frombits(v))
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return err
		}
		d.out.WriteString(strconv.FormatUint(v, 10))
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		v, err := d.uint(size)
		if err != nil {
			return err
		}
		shift := 64 - 8*size
		d.out.WriteString(strconv.FormatInt(int64(v<<shift)>>shift, 10))
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return err
		}
		return msgpackArray(d, depth, n)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return err
		}
		return msgpackMap(d, depth, n)
	default: // 0xc1 is never used
		return errNotFormat
	}
	return nil
}

func msgpackArray(d *binaryDecoder, depth int, n uint64) error {
	l, err := d.length(n)
	if err != nil {
		return err
	}
	d.out.WriteByte('[')
	for i := range l {
		if i > 0 {
			d.out.WriteByte(',')
		}
		if err := msgpackValue(d, depth+1); err != nil {
			return err
		}
	}
	d.out.WriteByte(']')
	return nil
}

func msgpackMap(d *binaryDecoder, depth int, n uint64) error {
	l, err := d.length(2 * n)
	if err != nil {
		return err
	}
	d.out.WriteByte('{')
	for i := range l / 2 {
		if i > 0 {
			d.out.WriteByte(',')
		}
		if err := d.key(func() error { return msgpackValue(d, depth+1) }); err != nil {
			return err
		}
		if err := msgpackValue(d, depth+1); err != nil {
			return err
		}
	}
	d.out.WriteByte('}')
	return nil
}

// CBOR (RFC 8949).

// cborSelfDescribed is tag 55799, which marks a CBOR payload.
var cborSelfDescribed = []byte{0xd9, 0xd9, 0xf7}

func cborLooksLike(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	major := data[0] >> 5
	return major == 4 || major == 5 || bytes.HasPrefix(data, cborSelfDescribed)
}

// errCBORBreak is the end of an indefinite-length item.
var errCBORBreak = errors.New("break")

func cborArg(d *binaryDecoder, info byte) (uint64, bool, error) {
	switch {
	case info < 24:
		return uint64(info), false, nil
	case info <= 27:
		v, err := d.uint(1 << (info - 24))
		return v, false, err
	case info == 31:
		return 0, true, nil
	}
	return 0, false, errNotFormat
}

func cborValue(d *binaryDecoder, depth int) error {
	if depth > maxBinaryDepth {
		return errNotFormat
	}
	if err := d.count(); err != nil {
		return err
	}
	b, err := d.take(1)
	if err != nil {
		return err
	}
	major, info := b[0]>>5, b[0]&0x1f
	if major == 7 {
		return cborSimple(d, info)
	}
	arg, indefinite, err := cborArg(d, info)
	if err != nil {
		return err
	}
	if indefinite && (major == 0 || major == 1 || major == 6) {
		return errNotFormat
	}
	switch major {
	case 0:
		d.out.WriteString(strconv.FormatUint(arg, 10))
	case 1:
		// -1-arg, which int64 cannot always hold.
		d.out.WriteString(new(big.Int).Neg(new(big.Int).Add(new(big.Int).SetUint64(arg), big.NewInt(1))).String())
	case 2, 3:
		var s []byte
		if indefinite {
			for {
				c, err := d.take(1)
				if err != nil {
					return err
				}
				if c[0] == 0xff {
					break
				}
				if c[0]>>5 != major {
					return errNotFormat
				}
				n, ind, err := cborArg(d, c[0]&0x1f)
				if err != nil || ind {
					return errNotFormat
				}
				l, err := d.length(n)
				if err != nil {
					return err
				}
				chunk, _ := d.take(l)
				s = append(s, chunk...)
			}
		} else {
			l, err := d.length(arg)
			if err != nil {
				return err
			}
			s, _ = d.take(l)
		}
		if major == 3 {
			d.str(s)
		} else {
			d.bytesValue(s)
		}
	case 4:
		if !indefinite {
			if _, err := d.length(arg); err != nil {
				return err
			}
		}
		d.out.WriteByte('[')
		for i := 0; indefinite || uint64(i) < arg; i++ {
			start := d.out.Len()
			if i > 0 {
				d.out.WriteByte(',')
			}
			err := cborValue(d, depth+1)
			if errors.Is(err, errCBORBreak) && indefinite {
				d.out.Truncate(start)
				break
			}
			if err != nil {
				return errNotFormat
			}
		}
		d.out.WriteByte(']')
	case 5:
		if !indefinite {
			if _, err := d.length(2 * arg); err != nil {
				return err
			}
		}
		d.out.WriteByte('{')
		for i := 0; indefinite || uint64(i) < arg; i++ {
			start := d.out.Len()
			if i > 0 {
				d.out.WriteByte(',')
			}
			err := d.key(func() error { return cborValue(d, depth+1) })
			if errors.Is(err, errCBORBreak) && indefinite {
				d.out.Truncate(start)
				break
			}
			if err != nil {
				return errNotFormat
			}
			if err := cborValue(d, depth+1); err != nil {
				return errNotFormat
			}
		}
		d.out.WriteByte('}')
	case 6:
		if arg == 55799 {
			return cborValue(d, depth+1)
		}
		d.out.WriteString(`{"$tag":` + strconv.FormatUint(arg, 10) + `,"value":`)
		if err := cborValue(d, depth+1); err != nil {
			return errNotFormat
		}
		d.out.WriteByte('}')
	}
	return nil
}

func cborSimple(d *binaryDecoder, info byte) error {
	switch info {
	case 20:
		d.out.WriteString("false")
	case 21:
		d.out.WriteString("true")
	case 22, 23:
		d.out.WriteString("null")
	case 25:
		v, err := d.uint(2)
		if err != nil {
			return err
		}
		d.float(halfFloat(uint16(v)))
	case 26:
		v, err := d.uint(4)
		if err != nil {
			return err
		}
		d.float(float64(math.Float32frombits(uint32(v))))
	case 27:
		v, err := d.uint(8)
		if err != nil {
			return err
		}
		d.float(math.Float64frombits(v))
	case 31:
		return errCBORBreak
	default:
		if info < 20 {
			d.out.WriteString(`{"$simple":` + strconv.Itoa(int(info)) + `}`)
			return nil
		}
		return errNotFormat
	}
	return nil
}

// halfFloat is an IEEE 754 half-precision value.
func halfFloat(h uint16) float64 {
	exp, mant := int(h>>10)&0x1f, float64(h&0x3ff)
	var v float64
	switch exp {
	case 0:
		v = math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			v = math.Inf(1)
		} else {
			v = math.NaN()
		}
	default:
		v = math.Ldexp(mant+1024, exp-25)
	}
	if h&0x8000 != 0 {
		return -v
	}
	return v
}

// binaryFormat recognises MessagePack or CBOR and returns it as compact JSON.
func binaryFormat(data []byte) (kind, text string, ok bool) {
	if msgpackLooksLike(data) {
		if text, ok := decodeWhole(data, msgpackValue); ok {
			return "msgpack", text, true
		}
	}
	if cborLooksLike(data) {
		if text, ok := decodeWhole(data, cborValue); ok {
			return "cbor", text, true
		}
	}
	return "", "", false
}
