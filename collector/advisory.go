package collector

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jetwatch/jetwatch/internal/natsname"
)

// Advisory types the bridge acts on.
const (
	typeMaxDeliver = "io.nats.jetstream.advisory.v1.max_deliver"
	typeTerminated = "io.nats.jetstream.advisory.v1.terminated"
)

// deliveryAdvisory is the body of a max_deliver or terminated advisory.
type deliveryAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Reason     string    `json:"reason"`
}

// Why the bridge refused an advisory: the values of the reason label of
// jetwatch_bridge_advisories_rejected_total. A fixed set, so an attacker
// who publishes advisories cannot mint label values.
const (
	// rejectMalformed: not JSON, another type, or a field out of range.
	rejectMalformed = "malformed"
	// rejectInvalidName: a stream or consumer name the server would refuse
	// (too long, white space, control characters, dots, wildcards).
	rejectInvalidName = "invalid_name"
	// rejectProtectedStream: jetwatch's own streams and those behind KV
	// buckets and object stores are never copied.
	rejectProtectedStream = "protected_stream"
	// rejectNotCaptured: the stream is outside --capture-streams.
	rejectNotCaptured = "not_captured"
	// rejectNotDelivered: the consumer cannot have delivered that message.
	rejectNotDelivered = "not_delivered"
	// rejectDeliveriesMismatch: a max_deliver advisory whose deliveries do
	// not reach the consumer's MaxDeliver.
	rejectDeliveriesMismatch = "deliveries_mismatch"
)

var rejectReasons = []string{rejectMalformed, rejectInvalidName, rejectProtectedStream, rejectNotCaptured, rejectNotDelivered, rejectDeliveriesMismatch}

// rejection is the bridge's refusal of an advisory: acked, never retried,
// nothing copied.
type rejection struct {
	reason string // one of the reject* constants
	detail string // in the operator's words; untrusted values clipped
}

func reject(reason, format string, args ...any) *rejection {
	return &rejection{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// maxClip bounds an untrusted value quoted in a log line, an event or a
// span; a 5,000-character stream name is shown by its start and length.
const maxClip = 64

// clip makes an untrusted value safe to log and show: at most maxClip
// runes, control and format characters and invalid UTF-8 replaced by
// U+FFFD, and the original length said when it was cut.
func clip(s string) string { return clipTo(s, maxClip) }

// maxReasonClip bounds a terminated message's reason in an event: a
// sentence, which a client sends with its term.
const maxReasonClip = 300

// clipTo is clip at max runes.
func clipTo(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			fmt.Fprintf(&b, "… (%d bytes)", len(s))
			return b.String()
		}
		if !unicode.IsGraphic(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// decodeDeliveryAdvisory reads a max_deliver or terminated advisory and
// checks every field before any of it reaches the connection. received
// (when the capture stream stored it) stands in for a missing or
// implausible timestamp.
func decodeDeliveryAdvisory(data []byte, received time.Time) (deliveryAdvisory, *rejection) {
	var a deliveryAdvisory
	if err := json.Unmarshal(data, &a); err != nil {
		return a, reject(rejectMalformed, "not a JSON advisory (%d bytes): %s", len(data), clip(err.Error()))
	}
	switch a.Type {
	case typeMaxDeliver, typeTerminated:
	default:
		return a, reject(rejectMalformed, "type %q is neither max_deliver nor terminated", clip(a.Type))
	}
	if err := natsname.Name(a.Stream); err != nil {
		return a, reject(rejectInvalidName, "stream %q: %v", clip(a.Stream), err)
	}
	if err := natsname.Name(a.Consumer); err != nil {
		return a, reject(rejectInvalidName, "consumer %q: %v", clip(a.Consumer), err)
	}
	// Sequences and counts go into SQLite integers and headers: the server
	// never sends 0 or anything near 2^63.
	if a.StreamSeq == 0 || a.StreamSeq > math.MaxInt64 {
		return a, reject(rejectMalformed, "stream_seq %d is out of range", a.StreamSeq)
	}
	if a.Deliveries == 0 || a.Deliveries > math.MaxInt64 {
		return a, reject(rejectMalformed, "deliveries %d is out of range", a.Deliveries)
	}
	// The time is the failure's as the advisory tells it; one from the
	// future or before JetStream existed is the capture time instead.
	if a.Time.Before(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)) || a.Time.After(received.Add(time.Minute)) {
		a.Time = received
	}
	a.ID = clip(a.ID)
	return a, nil
}

// kind is the advisory's type in the operator's words.
func (a deliveryAdvisory) kind() string {
	if a.Type == typeTerminated {
		return "terminated"
	}
	return "max_deliver"
}

// maxEventData bounds the advisory an event keeps. The server's
// advisories are a few hundred bytes; anyone allowed to publish on an
// advisory subject can send a megabyte.
const maxEventData = 16 << 10

// eventData is an advisory as the events table keeps it: its JSON, or the
// bytes as a JSON string when they are not JSON. One larger than
// maxEventData is kept as an object saying so, with its size and its
// first bytes as a string.
func eventData(data []byte) string {
	if len(data) > maxEventData {
		// json.Marshal writes invalid UTF-8 (a rune cut in two) as U+FFFD.
		head := string(data[:1024])
		b, _ := json.Marshal(struct {
			Truncated bool   `json:"jetwatch_truncated"`
			Size      int    `json:"size"`
			Head      string `json:"head"`
		}{true, len(data), head})
		return string(b)
	}
	if json.Valid(data) {
		return string(data)
	}
	s, _ := json.Marshal(string(data))
	return string(s)
}
