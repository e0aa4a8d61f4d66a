package collector

import (
	"encoding/json"
	"math"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// A cycle at 10,000 streams x 10 consumers decodes 100,000 consumer infos;
// encoding/json (reflection, and a validating pass before decoding) was
// its largest single cost. The decoder here walks an answer once and
// decodes the shape the NATS server writes. Anything else (a key that
// matches a field only regardless of case, a duplicate key, null, a
// number that is not a plain unsigned integer where one is wanted, an
// escape it does not handle, invalid UTF-8 in a decoded string ...) makes
// it give up, and encoding/json decodes the whole answer as before, and
// says what is wrong with it: the result is encoding/json's either way.

// fastDecoder is an answer with a decoder faster than encoding/json for
// the answers NATS writes. Given a zero answer, decodeFast either decodes
// data exactly as json.Unmarshal would and reports true, or changes
// nothing and reports false.
type fastDecoder interface {
	decodeFast(data []byte) bool
}

// decodeFast decodes a CONSUMER.LIST page; other pages are left to
// encoding/json.
func (p *listPage[T]) decodeFast(data []byte) bool {
	if page, ok := any(p).(*listPage[*consumerInfo]); ok {
		return decodeConsumerList(data, page)
	}
	return false
}

// decodeFast decodes a CONSUMER.INFO answer that carries no error; other
// answers are left to encoding/json.
func (a *rawAnswer) decodeFast(data []byte) bool {
	info, ok := a.info.(*consumerInfo)
	if !ok || !decodeConsumerInfoAnswer(data, info) {
		return false
	}
	a.decoded = true
	return true
}

// The JSON names of the fields decoded, for telling a key that matches
// none from one encoding/json would take for one regardless of case.
var (
	listPageKeys = []string{"total", "offset", "limit", "streams", "consumers", "missing", "offline", "error"}
	// infoAnswerKeys are those of a CONSUMER.INFO answer, which carries
	// an error beside the consumer's fields.
	infoAnswerKeys = []string{"stream_name", "name", "created", "config", "delivered", "ack_floor",
		"num_ack_pending", "num_redelivered", "num_waiting", "num_pending", "cluster", "push_bound",
		"ts", "paused", "pause_remaining", "error"}
	consumerInfoKeys = infoAnswerKeys[:len(infoAnswerKeys)-1]
	sequenceInfoKeys = []string{"consumer_seq", "stream_seq", "last_active"}
	clusterInfoKeys  = []string{"name", "raft_group", "leader", "leader_since", "system_account", "traffic_account", "replicas", "desired"}
	peerInfoKeys     = []string{"name", "current", "offline", "active", "lag", "peer", "pending"}
)

// decodeConsumerList decodes a CONSUMER.LIST page into p as json.Unmarshal
// would, or reports false and leaves p alone. Pages naming missing or
// offline consumers, or carrying an error, are left to encoding/json.
func decodeConsumerList(data []byte, p *listPage[*consumerInfo]) bool {
	d := strictJSON{data: data}
	var page listPage[*consumerInfo]
	var seen uint32
	ok := d.fields(func(key []byte) bool {
		var ok bool
		var bit uint32
		switch string(key) {
		case "total":
			bit = 1 << 0
			page.Total, ok = d.int()
		case "offset":
			bit = 1 << 1
			page.Offset, ok = d.int()
		case "limit":
			bit = 1 << 2
			page.Limit, ok = d.int()
		case "consumers":
			bit = 1 << 3
			page.Consumers, ok = d.consumerInfos()
		default:
			return d.unknown(key, listPageKeys)
		}
		return ok && once(&seen, bit)
	})
	if !ok || !d.end() {
		return false
	}
	*p = page
	return true
}

// decodeConsumerInfoAnswer decodes a CONSUMER.INFO answer into info as
// json.Unmarshal would, or reports false and leaves info alone. An answer
// with an error is left to encoding/json.
func decodeConsumerInfoAnswer(data []byte, info *consumerInfo) bool {
	d := strictJSON{data: data}
	var got consumerInfo
	if !d.consumerInfo(&got, infoAnswerKeys) || !d.end() {
		return false
	}
	*info = got
	return true
}

func (d *strictJSON) consumerInfos() ([]*consumerInfo, bool) {
	if !d.is('[') {
		return nil, false
	}
	list := make([]*consumerInfo, 0, 16) // never nil, as encoding/json's for []
	if d.is(']') {
		return list, true
	}
	for {
		info := new(consumerInfo)
		if !d.consumerInfo(info, consumerInfoKeys) {
			return nil, false
		}
		list = append(list, info)
		if !d.is(',') {
			return list, d.is(']')
		}
	}
}

// consumerInfo decodes an object into info. keys are the names the
// object's type knows: one that matches a key only regardless of case, or
// that info has no field for (an INFO answer's error), makes it give up.
func (d *strictJSON) consumerInfo(info *consumerInfo, keys []string) bool {
	var seen uint32
	return d.fields(func(key []byte) bool {
		var ok bool
		var bit uint32
		switch string(key) {
		case "stream_name":
			bit = 1 << 0
			info.Stream, ok = d.sharedText()
		case "name":
			bit = 1 << 1
			info.Name, ok = d.text()
		case "created":
			bit = 1 << 2
			ok = d.time(&info.Created)
		case "config":
			bit = 1 << 3
			// As encoding/json hands it to consumerConfig.UnmarshalJSON.
			var raw []byte
			raw, ok = d.object()
			info.Config.Raw = append(json.RawMessage(nil), raw...)
		case "delivered":
			bit = 1 << 4
			ok = d.sequenceInfo(&info.Delivered)
		case "ack_floor":
			bit = 1 << 5
			ok = d.sequenceInfo(&info.AckFloor)
		case "num_ack_pending":
			bit = 1 << 6
			info.NumAckPending, ok = d.int()
		case "num_redelivered":
			bit = 1 << 7
			info.NumRedelivered, ok = d.int()
		case "num_waiting":
			bit = 1 << 8
			info.NumWaiting, ok = d.int()
		case "num_pending":
			bit = 1 << 9
			info.NumPending, ok = d.uint64()
		case "cluster":
			bit = 1 << 10
			info.Cluster = new(jetstream.ClusterInfo)
			ok = d.clusterInfo(info.Cluster)
		case "push_bound":
			bit = 1 << 11
			info.PushBound, ok = d.bool()
		case "ts":
			bit = 1 << 12
			ok = d.time(&info.TimeStamp)
		case "paused":
			bit = 1 << 13
			info.Paused, ok = d.bool()
		case "pause_remaining":
			bit = 1 << 14
			var n int64
			n, ok = d.int64()
			info.PauseRemaining = time.Duration(n)
		default:
			return d.unknown(key, keys)
		}
		return ok && once(&seen, bit)
	})
}

func (d *strictJSON) sequenceInfo(s *jetstream.SequenceInfo) bool {
	var seen uint32
	return d.fields(func(key []byte) bool {
		var ok bool
		var bit uint32
		switch string(key) {
		case "consumer_seq":
			bit = 1 << 0
			s.Consumer, ok = d.uint64()
		case "stream_seq":
			bit = 1 << 1
			s.Stream, ok = d.uint64()
		case "last_active":
			bit = 1 << 2
			s.Last = new(time.Time)
			ok = d.time(s.Last)
		default:
			return d.unknown(key, sequenceInfoKeys)
		}
		return ok && once(&seen, bit)
	})
}

func (d *strictJSON) clusterInfo(c *jetstream.ClusterInfo) bool {
	var seen uint32
	return d.fields(func(key []byte) bool {
		var ok bool
		var bit uint32
		switch string(key) {
		case "name":
			bit = 1 << 0
			c.Name, ok = d.sharedText()
		case "raft_group":
			bit = 1 << 1
			c.RaftGroup, ok = d.text()
		case "leader":
			bit = 1 << 2
			c.Leader, ok = d.sharedText()
		case "leader_since":
			bit = 1 << 3
			c.LeaderSince = new(time.Time)
			ok = d.time(c.LeaderSince)
		case "system_account":
			bit = 1 << 4
			c.SystemAcc, ok = d.bool()
		case "traffic_account":
			bit = 1 << 5
			c.TrafficAcc, ok = d.sharedText()
		case "replicas":
			bit = 1 << 6
			c.Replicas, ok = d.peerInfos()
		case "desired":
			bit = 1 << 7
			// Only while peers are being moved: left to encoding/json,
			// decoding into a new one as it would.
			var raw []byte
			raw, ok = d.object()
			ok = ok && json.Unmarshal(raw, &c.Desired) == nil
		default:
			return d.unknown(key, clusterInfoKeys)
		}
		return ok && once(&seen, bit)
	})
}

func (d *strictJSON) peerInfos() ([]*jetstream.PeerInfo, bool) {
	if !d.is('[') {
		return nil, false
	}
	list := make([]*jetstream.PeerInfo, 0, 4) // never nil, as encoding/json's for []
	if d.is(']') {
		return list, true
	}
	for {
		p := new(jetstream.PeerInfo)
		if !d.peerInfo(p) {
			return nil, false
		}
		list = append(list, p)
		if !d.is(',') {
			return list, d.is(']')
		}
	}
}

func (d *strictJSON) peerInfo(p *jetstream.PeerInfo) bool {
	var seen uint32
	return d.fields(func(key []byte) bool {
		var ok bool
		var bit uint32
		switch string(key) {
		case "name":
			bit = 1 << 0
			p.Name, ok = d.sharedText()
		case "current":
			bit = 1 << 1
			p.Current, ok = d.bool()
		case "offline":
			bit = 1 << 2
			p.Offline, ok = d.bool()
		case "active":
			bit = 1 << 3
			var n int64
			n, ok = d.int64()
			p.Active = time.Duration(n)
		case "lag":
			bit = 1 << 4
			p.Lag, ok = d.uint64()
		case "peer":
			bit = 1 << 5
			p.Peer, ok = d.sharedText()
		case "pending":
			bit = 1 << 6
			p.Pending, ok = d.bool()
		default:
			return d.unknown(key, peerInfoKeys)
		}
		return ok && once(&seen, bit)
	})
}

// sharedText is text that many objects of an answer repeat (the stream's
// name, server names, peer ids): one string for each, not one per object.
func (d *strictJSON) sharedText() (string, bool) {
	d.ws()
	start := d.off
	raw, escaped, _, ok := d.stringBytes()
	if !ok {
		return "", false
	}
	if !escaped {
		for _, s := range d.shared[:d.nShared] {
			if string(raw) == s {
				return s, true
			}
		}
	}
	d.off = start
	s, ok := d.text()
	if ok && d.nShared < len(d.shared) {
		d.shared[d.nShared] = s
		d.nShared++
	}
	return s, ok
}

// once marks bit seen, reporting false when it already was: a duplicate
// key, which encoding/json decodes into what the first one left.
func once(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// strictJSON walks JSON once, validating it as it goes as encoding/json
// does. Its methods report false for anything but the plain shape the
// NATS server writes; the caller then gives up.
type strictJSON struct {
	data []byte
	off  int
	// shared are the first strings sharedText decoded: a page's stream,
	// cluster, and servers.
	shared  [16]string
	nShared int
}

// maxSkipDepth bounds the nesting of skipped values; deeper ones are left
// to encoding/json, whose own limit is far higher.
const maxSkipDepth = 100

func (d *strictJSON) ws() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// is passes c, after any whitespace, when it comes next.
func (d *strictJSON) is(c byte) bool {
	if d.off < len(d.data) && d.data[d.off] == c { // NATS writes no whitespace
		d.off++
		return true
	}
	d.ws()
	if d.off < len(d.data) && d.data[d.off] == c {
		d.off++
		return true
	}
	return false
}

// end says whether only whitespace is left.
func (d *strictJSON) end() bool {
	d.ws()
	return d.off == len(d.data)
}

// fields walks an object, calling field with each key, positioned at its
// value, which field must pass; false from field gives up.
func (d *strictJSON) fields(field func(key []byte) bool) bool {
	if !d.is('{') {
		return false
	}
	if d.is('}') {
		return true
	}
	for {
		key, ok := d.key()
		if !ok || !d.is(':') || !field(key) {
			return false
		}
		if !d.is(',') {
			return d.is('}')
		}
	}
}

// key reads a key of printable ASCII without escapes: encoding/json
// matches any other (escaped, or with letters that fold to ASCII ones,
// such as the Kelvin sign) to fields in ways not worth repeating here.
func (d *strictJSON) key() ([]byte, bool) {
	if !d.is('"') {
		return nil, false
	}
	start, i := d.off, d.off
	for i < len(d.data) && plainASCII[d.data[i]] {
		i++
	}
	if i == len(d.data) || d.data[i] != '"' {
		return nil, false
	}
	d.off = i + 1
	return d.data[start:i], true
}

// plainASCII says which bytes a string holds as they are: printable
// ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unknown skips the value of a key that is none of known, unless
// encoding/json would take it for one of them regardless of case.
func (d *strictJSON) unknown(key []byte, known []string) bool {
	for _, k := range known {
		if equalFoldASCII(key, k) {
			return false
		}
	}
	return d.skip(0)
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// object passes an object, returning its bytes.
func (d *strictJSON) object() ([]byte, bool) {
	d.ws()
	start := d.off
	if d.off >= len(d.data) || d.data[d.off] != '{' || !d.skip(0) {
		return nil, false
	}
	return d.data[start:d.off], true
}

// skip passes any value, checking it is valid JSON.
func (d *strictJSON) skip(depth int) bool {
	d.ws()
	if d.off >= len(d.data) {
		return false
	}
	switch c := d.data[d.off]; c {
	case '{':
		if depth >= maxSkipDepth {
			return false
		}
		d.off++
		if d.is('}') {
			return true
		}
		for {
			if _, _, _, ok := d.stringBytes(); !ok || !d.is(':') || !d.skip(depth+1) {
				return false
			}
			if !d.is(',') {
				return d.is('}')
			}
		}
	case '[':
		if depth >= maxSkipDepth {
			return false
		}
		d.off++
		if d.is(']') {
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			if !d.is(',') {
				return d.is(']')
			}
		}
	case '"':
		_, _, _, ok := d.stringBytes()
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	_, _, ok := d.number()
	return ok
}

func (d *strictJSON) literal(s string) bool {
	if len(d.data)-d.off >= len(s) && string(d.data[d.off:d.off+len(s)]) == s {
		d.off += len(s)
		return true
	}
	return false
}

// stringBytes passes a string, after any whitespace, checking what
// encoding/json's scanner checks (no control characters, valid escapes;
// invalid UTF-8 is its decoder's business), and returns the bytes between
// its quotes, still escaped, whether it has escapes and whether it has
// bytes outside ASCII.
func (d *strictJSON) stringBytes() (raw []byte, escaped, nonASCII, ok bool) {
	if !d.is('"') {
		return nil, false, false, false
	}
	start := d.off
	for d.off < len(d.data) {
		for d.off < len(d.data) && plainASCII[d.data[d.off]] {
			d.off++
		}
		if d.off == len(d.data) {
			break
		}
		c := d.data[d.off]
		d.off++
		switch {
		case c == '"':
			return d.data[start : d.off-1], escaped, nonASCII, true
		case c < 0x20:
			return nil, false, false, false
		case c >= utf8.RuneSelf:
			nonASCII = true
		case c == '\\':
			if d.off >= len(d.data) {
				return nil, false, false, false
			}
			escaped = true
			e := d.data[d.off]
			d.off++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(d.data)-d.off < 4 {
					return nil, false, false, false
				}
				if _, ok := hex4(d.data[d.off:]); !ok {
					return nil, false, false, false
				}
				d.off += 4
			default:
				return nil, false, false, false
			}
		}
	}
	return nil, false, false, false
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// text decodes a string. encoding/json replaces invalid UTF-8 and lone
// surrogates with U+FFFD: such strings, and any surrogate pair, make the
// decoder give up.
func (d *strictJSON) text() (string, bool) {
	raw, escaped, nonASCII, ok := d.stringBytes()
	if !ok || nonASCII && !utf8.Valid(raw) {
		return "", false
	}
	if !escaped {
		return string(raw), true
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		// stringBytes checked that the escape is complete and valid.
		switch e := raw[i+1]; e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			if utf16.IsSurrogate(r) {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			out = append(out, e)
		}
		i += 2
	}
	return string(out), true
}

// time decodes a string as encoding/json does a time.Time: by its
// UnmarshalJSON, given the string quoted as it came.
func (d *strictJSON) time(t *time.Time) bool {
	d.ws()
	start := d.off
	if _, _, _, ok := d.stringBytes(); !ok {
		return false
	}
	return t.UnmarshalJSON(d.data[start:d.off]) == nil
}

func (d *strictJSON) bool() (v, ok bool) {
	d.ws()
	switch {
	case d.literal("true"):
		return true, true
	case d.literal("false"):
		return false, true
	}
	return false, false
}

// number passes a number, returning its bytes and whether it is a plain
// unsigned integer: no sign, fraction or exponent.
func (d *strictJSON) number() (digits []byte, unsigned, ok bool) {
	b, i := d.data, d.off
	digitsFrom := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	unsigned = true
	if i < len(b) && b[i] == '-' {
		i++
		unsigned = false
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digitsFrom(i)
	default:
		return nil, false, false
	}
	if i < len(b) && b[i] == '.' {
		unsigned = false
		j := digitsFrom(i + 1)
		if j == i+1 {
			return nil, false, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		unsigned = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsFrom(i)
		if j == i {
			return nil, false, false
		}
		i = j
	}
	digits, d.off = b[d.off:i], i
	return digits, unsigned, true
}

// uint64 decodes a plain unsigned integer that fits 64 bits.
func (d *strictJSON) uint64() (uint64, bool) {
	d.ws()
	digits, unsigned, ok := d.number()
	if !ok || !unsigned {
		return 0, false
	}
	var v uint64
	for _, c := range digits {
		x := uint64(c - '0')
		if v > (math.MaxUint64-x)/10 {
			return 0, false
		}
		v = v*10 + x
	}
	return v, true
}

func (d *strictJSON) int64() (int64, bool) {
	v, ok := d.uint64()
	if !ok || v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

func (d *strictJSON) int() (int, bool) {
	v, ok := d.uint64()
	if !ok || v > math.MaxInt {
		return 0, false
	}
	return int(v), true
}
