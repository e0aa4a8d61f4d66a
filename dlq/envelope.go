package dlq

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/internal/natsname"
)

// The envelope is shared with the service package through deadletter,
// which links none of jetwatch's server side; these names stay for dlq's
// callers.
const (
	HeaderStream             = deadletter.HeaderStream
	HeaderSubject            = deadletter.HeaderSubject
	HeaderSequence           = deadletter.HeaderSequence
	HeaderConsumer           = deadletter.HeaderConsumer
	HeaderDeliveries         = deadletter.HeaderDeliveries
	HeaderReason             = deadletter.HeaderReason
	HeaderError              = deadletter.HeaderError
	HeaderFailedAt           = deadletter.HeaderFailedAt
	HeaderService            = deadletter.HeaderService
	HeaderPayloadUnavailable = deadletter.HeaderPayloadUnavailable
	// HeaderOriginalMsgID keeps the original's Nats-Msg-Id, which the
	// dead letter cannot carry under its own name.
	HeaderOriginalMsgID = deadletter.HeaderOriginalMsgID

	headerPrefix = deadletter.HeaderPrefix
)

// Reasons a message was dead-lettered.
const (
	ReasonMaxDeliver = deadletter.ReasonMaxDeliver
	ReasonTerminated = deadletter.ReasonTerminated
	ReasonError      = deadletter.ReasonError
)

// SubjectPrefix is the first token of every dead-letter subject:
// dlq.<stream>.<consumer>.
const SubjectPrefix = deadletter.SubjectPrefix

// maxErrorLen bounds the error text kept in a header.
const maxErrorLen = deadletter.MaxErrorLen

// Envelope is what the Dlq- headers say about a dead letter.
type Envelope = deadletter.Envelope

// Subject is where a dead letter for stream and consumer is published.
func Subject(stream, consumer string) string { return deadletter.Subject(stream, consumer) }

// Bounds of what the index keeps of an envelope's text. Longer values are
// cut (with a note in Problems); the DLQ stream keeps the whole message.
const (
	maxNameLen    = natsname.MaxNameLen // stream, consumer, service
	maxSubjectLen = natsname.MaxSubjectLen
)

// maxStoredInt is the largest integer SQLite stores: sequence numbers and
// delivery counts above it are kept as this, with a note.
const maxStoredInt = math.MaxInt64

// Failure times outside these are not believed: the time the dead letter
// reached the DLQ is shown instead, with a note. Years past 9999 (or before
// year 0, as a time zone offset can make them) cannot even be written as
// JSON.
var (
	earliestFailure = time.Unix(0, 0).UTC()
	latestFailure   = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
)

// Decode reads the envelope of a message published on subject at time
// published. Missing or garbage headers never fail: what can be inferred
// from the subject (dlq.<stream>.<consumer>) and the publish time fills in,
// and Problems says what was wrong. Whatever the headers hold, the result
// fits the index: valid UTF-8 without NUL bytes, text cut to the index's
// bounds, numbers within SQLite's integers, a failure time between 1970
// and 9999.
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
	if e.Subject != "" {
		// The original subject is where a redelivery goes by default: one
		// that cannot be published to is dropped rather than mended into
		// another subject.
		if err := natsname.Subject(e.Subject); err != nil {
			problem("%s %q is not a subject a message can have (%v): a redelivery needs a target subject", HeaderSubject, clip(e.Subject), err)
			e.Subject = ""
		}
	}
	e.Sequence = decodeCount(HeaderSequence, h.Get(HeaderSequence), "a sequence number", problem)
	e.Deliveries = decodeCount(HeaderDeliveries, h.Get(HeaderDeliveries), "a number", problem)
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
		switch t = t.UTC(); {
		case err != nil:
			problem("%s %q is not an RFC 3339 time; the time it reached the DLQ is shown", HeaderFailedAt, clip(v))
		case t.Before(earliestFailure) || t.After(latestFailure):
			problem("%s %q is outside the years 1970 to 9999; the time it reached the DLQ is shown", HeaderFailedAt, clip(v))
		default:
			e.FailedAt = t
		}
	}
	e.Service = h.Get(HeaderService)
	e.PayloadUnavailable = h.Get(HeaderPayloadUnavailable)
	e.Stream = storable(HeaderStream, e.Stream, maxNameLen, problem)
	e.Consumer = storable(HeaderConsumer, e.Consumer, maxNameLen, problem)
	e.Error = storable(HeaderError, e.Error, maxErrorLen, problem)
	e.Service = storable(HeaderService, e.Service, maxNameLen, problem)
	e.PayloadUnavailable = storable(HeaderPayloadUnavailable, e.PayloadUnavailable, maxErrorLen, problem)
	return e
}

// decodeCount reads a sequence number or a count: garbage is 0, and a
// number too large to store is kept as the largest one that is.
func decodeCount(name, v, what string, problem func(string, ...any)) uint64 {
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && n > maxStoredInt:
		problem("%s %q is larger than jetwatch can store; kept as %d", name, clip(v), uint64(maxStoredInt))
		return maxStoredInt
	case err != nil:
		problem("%s %q is not %s", name, clip(v), what)
		return 0
	}
	return n
}

// storable makes a header's text fit the index: invalid UTF-8 and NUL bytes
// become U+FFFD and text longer than limit bytes is cut, each with a note.
func storable(name, v string, limit int, problem func(string, ...any)) string {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
		problem("%s is not valid UTF-8: the bytes that are not are shown as \uFFFD", name)
	}
	if strings.IndexByte(v, 0) >= 0 {
		v = strings.ReplaceAll(v, "\x00", "\uFFFD")
		problem("%s holds NUL bytes: they are shown as \uFFFD", name)
	}
	if len(v) > limit {
		problem("%s is %d bytes long: the index keeps the first %d (the DLQ stream keeps all of it)", name, len(v), limit)
		v = deadletter.HeaderValue(v, limit)
	}
	return v
}

func clip(s string) string { return deadletter.HeaderValue(s, 80) }

// IsEnvelopeHeader says whether a header belongs to the envelope.
func IsEnvelopeHeader(name string) bool { return deadletter.IsEnvelopeHeader(name) }
