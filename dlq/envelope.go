package dlq

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// Header names of the dead-letter envelope. Services that dead-letter
// messages themselves set the same headers (see README).
const (
	HeaderStream             = "Dlq-Stream"
	HeaderSubject            = "Dlq-Subject"
	HeaderSequence           = "Dlq-Sequence"
	HeaderConsumer           = "Dlq-Consumer"
	HeaderDeliveries         = "Dlq-Deliveries"
	HeaderReason             = "Dlq-Reason"
	HeaderError              = "Dlq-Error"
	HeaderFailedAt           = "Dlq-Failed-At"
	HeaderService            = "Dlq-Service"
	HeaderPayloadUnavailable = "Dlq-Payload-Unavailable"
	// HeaderOriginalMsgID keeps the original's Nats-Msg-Id, which the
	// dead letter cannot carry under its own name.
	HeaderOriginalMsgID = "Dlq-Original-Msg-Id"

	headerPrefix = "Dlq-"
)

// Reasons a message was dead-lettered.
const (
	ReasonMaxDeliver = "max_deliver"
	ReasonTerminated = "terminated"
	ReasonError      = "error"
)

// SubjectPrefix is the first token of every dead-letter subject:
// dlq.<stream>.<consumer>.
const SubjectPrefix = "dlq"

// maxErrorLen bounds the error text kept in a header, far below the 64 KiB
// header limit.
const maxErrorLen = 4096

// Envelope is what the Dlq- headers say about a dead letter.
type Envelope struct {
	Stream     string
	Subject    string // the original subject
	Sequence   uint64 // the original stream sequence, 0 when unknown
	Consumer   string
	Deliveries uint64
	Reason     string
	Error      string
	FailedAt   time.Time
	Service    string
	// PayloadUnavailable says why the original payload is missing (for
	// example, a Term on a WorkQueue stream removed it); empty when the
	// payload is there.
	PayloadUnavailable string
	// Problems lists what was wrong with the headers, in the operator's
	// words; a dead letter is indexed whatever they say.
	Problems []string
}

// Subject is where a dead letter for stream and consumer is published.
func Subject(stream, consumer string) string {
	return SubjectPrefix + "." + stream + "." + consumer
}

// Apply writes the envelope into h, replacing earlier Dlq- headers.
func (e Envelope) Apply(h nats.Header) {
	for k := range h {
		if strings.HasPrefix(k, headerPrefix) {
			delete(h, k)
		}
	}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderStream, e.Stream)
	set(HeaderSubject, e.Subject)
	if e.Sequence > 0 {
		h.Set(HeaderSequence, strconv.FormatUint(e.Sequence, 10))
	}
	set(HeaderConsumer, e.Consumer)
	if e.Deliveries > 0 {
		h.Set(HeaderDeliveries, strconv.FormatUint(e.Deliveries, 10))
	}
	set(HeaderReason, e.Reason)
	set(HeaderError, headerSafe(e.Error, maxErrorLen))
	if !e.FailedAt.IsZero() {
		h.Set(HeaderFailedAt, e.FailedAt.UTC().Format(time.RFC3339Nano))
	}
	set(HeaderService, e.Service)
	set(HeaderPayloadUnavailable, headerSafe(e.PayloadUnavailable, maxErrorLen))
}

// Decode reads the envelope of a message published on subject at time
// published. Missing or garbage headers never fail: what can be inferred
// from the subject (dlq.<stream>.<consumer>) and the publish time fills in,
// and Problems says what was wrong.
func Decode(subject string, h nats.Header, published time.Time) Envelope {
	var e Envelope
	problem := func(format string, args ...any) {
		e.Problems = append(e.Problems, fmt.Sprintf(format, args...))
	}
	e.Stream = h.Get(HeaderStream)
	e.Consumer = h.Get(HeaderConsumer)
	if tokens := strings.Split(subject, "."); len(tokens) >= 3 && tokens[0] == SubjectPrefix {
		if e.Stream == "" {
			e.Stream = tokens[1]
		}
		if e.Consumer == "" {
			e.Consumer = strings.Join(tokens[2:], ".")
		}
	}
	e.Subject = h.Get(HeaderSubject)
	if v := h.Get(HeaderSequence); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			problem("%s %q is not a sequence number", HeaderSequence, clip(v))
		}
		e.Sequence = n
	}
	if v := h.Get(HeaderDeliveries); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			problem("%s %q is not a number", HeaderDeliveries, clip(v))
		}
		e.Deliveries = n
	}
	e.Reason = strings.ToLower(strings.TrimSpace(h.Get(HeaderReason)))
	switch e.Reason {
	case ReasonMaxDeliver, ReasonTerminated, ReasonError:
	case "":
		if h.Get(HeaderStream) == "" && h.Get(HeaderReason) == "" {
			problem("no %s headers: stream and consumer inferred from the subject", headerPrefix)
		}
		e.Reason = ReasonError
	default:
		problem("unknown %s %q, shown as error", HeaderReason, clip(e.Reason))
		e.Reason = ReasonError
	}
	e.Error = h.Get(HeaderError)
	e.FailedAt = published.UTC()
	if v := h.Get(HeaderFailedAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		if err != nil {
			problem("%s %q is not an RFC 3339 time; the time it reached the DLQ is shown", HeaderFailedAt, clip(v))
		} else {
			e.FailedAt = t.UTC()
		}
	}
	e.Service = h.Get(HeaderService)
	e.PayloadUnavailable = h.Get(HeaderPayloadUnavailable)
	for _, s := range []*string{&e.Stream, &e.Consumer, &e.Subject, &e.Error, &e.Service, &e.PayloadUnavailable} {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	return e
}

// oneLine turns line breaks into spaces. Built once: building a replacer
// costs more than using it, and every dead letter's error passes here.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// headerSafe makes s fit a header value: one line, at most n bytes.
func headerSafe(s string, n int) string {
	s = oneLine.Replace(s)
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

func clip(s string) string { return headerSafe(s, 80) }

// IsEnvelopeHeader says whether a header belongs to the envelope.
func IsEnvelopeHeader(name string) bool { return strings.HasPrefix(name, headerPrefix) }
