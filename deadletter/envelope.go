// Package deadletter is the dead-letter envelope both sides share: the
// Dlq- header names, the reasons, the dlq.<stream>.<consumer> subject
// layout, and writing an envelope into headers. jetwatch's dlq package
// reads dead letters with it, and the service package writes them; it
// imports nothing beyond nats.go, so a service that dead-letters links
// none of jetwatch's server side.
package deadletter

import (
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

	// HeaderPrefix begins every envelope header's name.
	HeaderPrefix = "Dlq-"
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

// MaxErrorLen bounds the error text kept in a header, far below the 64 KiB
// header limit.
const MaxErrorLen = 4096

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
	// words, when they were decoded; a dead letter is indexed whatever
	// they say. Apply ignores it.
	Problems []string
}

// Subject is where a dead letter for stream and consumer is published.
func Subject(stream, consumer string) string {
	return SubjectPrefix + "." + stream + "." + consumer
}

// Apply writes the envelope into h, replacing earlier Dlq- headers.
func (e Envelope) Apply(h nats.Header) {
	for k := range h {
		if strings.HasPrefix(k, HeaderPrefix) {
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
	set(HeaderError, HeaderValue(e.Error, MaxErrorLen))
	if !e.FailedAt.IsZero() {
		h.Set(HeaderFailedAt, e.FailedAt.UTC().Format(time.RFC3339Nano))
	}
	set(HeaderService, e.Service)
	set(HeaderPayloadUnavailable, HeaderValue(e.PayloadUnavailable, MaxErrorLen))
}

// oneLine turns line breaks into spaces. Built once: building a replacer
// costs more than using it, and every dead letter's error passes here.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// HeaderValue makes s fit a header value: one line, at most n bytes (cut
// at a character boundary, then marked with an ellipsis).
func HeaderValue(s string, n int) string {
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

// IsEnvelopeHeader says whether a header belongs to the envelope.
func IsEnvelopeHeader(name string) bool { return strings.HasPrefix(name, HeaderPrefix) }
