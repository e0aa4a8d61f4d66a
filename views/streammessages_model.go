package views

import (
	"net/url"
	"strconv"
	"time"
)

// StreamMessages is the stream browser's page: one page of a stream's
// messages, read without consuming them.
type StreamMessages struct {
	Stream string
	Filter StreamMessagesFilter
	Items  []StreamMessageRow
	// Newest says the items run newest first.
	Newest bool
	// NextURL is the next page in the same order, empty when none.
	NextURL string
	// Note says why a page holds fewer messages than asked (a look back
	// that stopped), empty otherwise.
	Note string
	// FirstSeq and LastSeq are the stream's when read.
	FirstSeq, LastSeq uint64
	// PayloadHidden says payloads are hidden from this viewer; Redacted
	// that some header or payload values are masked.
	PayloadHidden bool
	Redacted      bool
	// Around is the sequence a "show in stream" link looks around, 0
	// when none; its message is marked.
	Around uint64
}

// StreamMessagesFilter is the browser's form, as typed.
type StreamMessagesFilter struct {
	Subject, StartSeq, Since, Order, Limit string
	IncludeInternal                        bool
}

// StreamMessageRow is one message on the page.
type StreamMessageRow struct {
	Seq       uint64
	Subject   string
	Time      time.Time
	Size      int
	Truncated bool
	Kept      int // payload bytes read, when Truncated
	Headers   []HeaderRow
	Payload   PayloadView
}

// StreamMessagesURL is the stream browser's path for stream with query q.
func StreamMessagesURL(stream string, q url.Values) string {
	u := StreamURL(stream) + "/messages"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// StreamAroundURL is the stream browser around sequence seq of stream,
// filtered to subject when it is set: where a dead letter came from.
func StreamAroundURL(stream string, seq uint64, subject string) string {
	q := url.Values{"around": {strconv.FormatUint(seq, 10)}, "limit": {"21"}}
	if subject != "" {
		q.Set("subject", subject)
	}
	return StreamMessagesURL(stream, q)
}

// StreamDeadLettersURL is the dead-letter list filtered to stream.
func StreamDeadLettersURL(stream string) string {
	return "/dead-letters?" + url.Values{"stream": {stream}}.Encode()
}
