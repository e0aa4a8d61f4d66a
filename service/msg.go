package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Acknowledgement bodies, as nats.go's jetstream package sends them.
var (
	ackBody      = []byte("+ACK")
	nakBody      = []byte("-NAK")
	progressBody = []byte("+WPI")
	termBody     = []byte("+TERM")
)

// ackTimeout bounds a DoubleAck whose context has no deadline, as
// jetstream's default API timeout does.
const ackTimeout = 5 * time.Second

// pulledMsg is a message the runner's own pull delivered, as a
// jetstream.Msg: nats.go makes one only inside its own consumers, so the
// runner's standing pull wraps each *nats.Msg itself.
type pulledMsg struct {
	msg *nats.Msg
	nc  *nats.Conn
	// settled is set once an ack, nak or term went out: a second one is
	// refused with jetstream.ErrMsgAlreadyAckd, as jetstream's are.
	settled atomic.Bool
}

var _ jetstream.Msg = (*pulledMsg)(nil)

// Metadata parses the JetStream metadata from the reply subject.
func (m *pulledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.msg.Reply == "" {
		return nil, jetstream.ErrMsgNoReply
	}
	return parseAckSubject(m.msg.Reply)
}

// Data is the message body.
func (m *pulledMsg) Data() []byte { return m.msg.Data }

// Headers are the message's headers.
func (m *pulledMsg) Headers() nats.Header { return m.msg.Header }

// Subject is the subject the message was published to.
func (m *pulledMsg) Subject() string { return m.msg.Subject }

// Reply is the message's ack subject.
func (m *pulledMsg) Reply() string { return m.msg.Reply }

// Ack acknowledges the message.
func (m *pulledMsg) Ack() error { return m.settle(ackBody) }

// DoubleAck acknowledges the message and waits for the server's answer.
func (m *pulledMsg) DoubleAck(ctx context.Context) error {
	if m.msg.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	if m.settled.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ackTimeout)
		defer cancel()
	}
	if _, err := m.nc.RequestWithContext(ctx, m.msg.Reply, ackBody); err != nil {
		return err
	}
	m.settled.Store(true)
	return nil
}

// Nak asks for the message again at once.
func (m *pulledMsg) Nak() error { return m.settle(nakBody) }

// NakWithDelay asks for the message again after delay.
func (m *pulledMsg) NakWithDelay(delay time.Duration) error {
	if delay <= 0 {
		return m.settle(nakBody)
	}
	return m.settle(fmt.Appendf(nil, `%s {"delay": %d}`, nakBody, delay.Nanoseconds()))
}

// InProgress resets the server's redelivery timer; it may be sent often.
func (m *pulledMsg) InProgress() error {
	if m.msg.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	if m.settled.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	return m.nc.Publish(m.msg.Reply, progressBody)
}

// Term tells the server never to redeliver the message.
func (m *pulledMsg) Term() error { return m.settle(termBody) }

// TermWithReason is Term with a reason for the server's advisory.
func (m *pulledMsg) TermWithReason(reason string) error {
	if reason == "" {
		return m.settle(termBody)
	}
	return m.settle(fmt.Appendf(nil, "%s %s", termBody, reason))
}

// settle sends body to the ack subject, once.
func (m *pulledMsg) settle(body []byte) error {
	if m.msg.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	if m.settled.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if err := m.nc.Publish(m.msg.Reply, body); err != nil {
		return err
	}
	m.settled.Store(true)
	return nil
}

// errAckSubject says a reply subject is not a JetStream ack subject.
var errAckSubject = errors.New("not a JetStream ack subject")

// parseAckSubject reads the metadata in a JetStream ack subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>,
// or, from newer servers, $JS.ACK.<domain>.<account hash>.<stream>... with
// a token more at the end (which may go in future, so 11 tokens will do).
func parseAckSubject(reply string) (*jetstream.MsgMetadata, error) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return nil, fmt.Errorf("%w: %w: %q", jetstream.ErrNotJSMessage, errAckSubject, reply)
	}
	// v1 has 7 tokens after $JS.ACK., v2 at least 9.
	tokens := strings.Split(rest, ".")
	meta := &jetstream.MsgMetadata{}
	var t []string // stream, consumer, delivered, sseq, cseq, time, pending
	switch {
	case len(tokens) == 7:
		t = tokens
	case len(tokens) >= 9:
		if tokens[0] != "_" {
			meta.Domain = tokens[0]
		}
		t = tokens[2:9]
	default:
		return nil, fmt.Errorf("%w: %w: %q", jetstream.ErrNotJSMessage, errAckSubject, reply)
	}
	meta.Stream, meta.Consumer = t[0], t[1]
	meta.NumDelivered = parseNum(t[2])
	meta.Sequence.Stream = parseNum(t[3])
	meta.Sequence.Consumer = parseNum(t[4])
	meta.Timestamp = time.Unix(0, int64(parseNum(t[5])))
	meta.NumPending = parseNum(t[6])
	return meta, nil
}

// parseNum is a token's decimal number, 0 when it is not one (as nats.go
// reads them).
func parseNum(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
