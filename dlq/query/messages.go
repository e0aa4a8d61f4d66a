package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/directget"
	"github.com/jetwatch/jetwatch/store"
)

// A dead letter's headers and payload are read from its message in the
// DLQ stream; its id is the message's sequence there.

// ErrMessageUnreadable wraps a failure to ask NATS for a dead letter's
// message (not its absence: that is a dead letter marked gone).
var ErrMessageUnreadable = errors.New("its headers and payload could not be read from NATS")

// directHeaders are the headers a direct get adds to the stored message.
var directHeaders = []string{jetstream.StreamHeader, jetstream.SubjectHeader, jetstream.SequenceHeader,
	jetstream.TimeStampHeaer, "Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence"}

// readers is how many messages readMessages asks for at once when it
// cannot read them as one range.
const readers = 128

// maxRange is the most messages one batched direct get asks for.
const maxRange = 1000

// dlqStream is the DLQ stream's handle, looked up on first use.
func (q *Queries) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.handle != nil {
		return q.handle, nil
	}
	if q.js == nil {
		return nil, errors.New("no NATS connection to read it from")
	}
	s, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		return nil, err
	}
	q.handle = s
	return s, nil
}

// forget drops the stream's handle after a failed read: the stream may
// have been recreated.
func (q *Queries) forget() {
	q.mu.Lock()
	q.handle = nil
	q.mu.Unlock()
}

func (q *Queries) readFailed(d *store.DeadLetter, err error) error {
	q.forget()
	return fmt.Errorf("dead letter %d: reading its headers and payload from the %s stream: %w (%w)", d.ID, q.stream, err, ErrMessageUnreadable)
}

// readMessage fills d's headers and payload from its message.
func (q *Queries) readMessage(ctx context.Context, d *store.DeadLetter) error {
	s, err := q.dlqStream(ctx)
	if err != nil {
		return q.readFailed(d, err)
	}
	m, err := s.GetMsg(ctx, d.ID)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		q.fill(d, nil, s.CachedInfo().Config.AllowDirect)
	case err != nil:
		return q.readFailed(d, err)
	default:
		q.fill(d, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, s.CachedInfo().Config.AllowDirect)
	}
	return nil
}

// fill sets d's headers and payload from m, its message (nil when the
// stream no longer holds it).
func (q *Queries) fill(d *store.DeadLetter, m *nats.Msg, direct bool) {
	switch {
	case m == nil:
		markGone(d, fmt.Sprintf("the %s stream no longer holds this dead letter (its limits removed it, or it was deleted); what the index kept is shown", q.stream))
	case m.Subject != d.DLQSubject:
		markGone(d, fmt.Sprintf("message %d of the %s stream is another message now (on %s, not %s): was the stream recreated? Run jetwatch reindex", d.ID, q.stream, m.Subject, d.DLQSubject))
	default:
		// Each read makes a header map of its own, so it is d's to keep.
		d.Headers = m.Header
		if d.Headers == nil {
			d.Headers = map[string][]string{}
		}
		if direct {
			for _, k := range directHeaders {
				delete(d.Headers, k)
			}
		}
		if d.PayloadAvailable {
			d.Payload = m.Data
		}
	}
}

// readMessages fills the headers and payload of letters. Dead letters
// close together in the stream (a bulk job's chunk, usually) are read as
// one range in a single batched direct get; others a few at a time.
func (q *Queries) readMessages(ctx context.Context, letters []store.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	slices.SortFunc(letters, func(a, b store.DeadLetter) int { return cmp.Compare(a.ID, b.ID) })
	lo, hi := letters[0].ID, letters[len(letters)-1].ID
	if span := hi - lo + 1; len(letters) > 1 && span <= 2*uint64(len(letters)) && span <= maxRange {
		s, err := q.dlqStream(ctx)
		if err != nil {
			return q.readFailed(&letters[0], err)
		}
		if subject := directget.Subject(q.js, q.stream); s.CachedInfo().Config.AllowDirect && subject != "" {
			msgs, last, err := q.readRange(ctx, subject, lo, int(span))
			if err != nil {
				return q.readFailed(&letters[0], err)
			}
			var rest []*store.DeadLetter
			for i := range letters {
				switch m := msgs[letters[i].ID]; {
				case m != nil || letters[i].ID < last:
					// The server steps over deleted messages: one missing
					// below the last it sent is gone.
					q.fill(&letters[i], m, true)
				default:
					// Past where the server stopped (its byte limit for one
					// answer): read on their own.
					rest = append(rest, &letters[i])
				}
			}
			return q.readEach(ctx, rest)
		}
	}
	each := make([]*store.DeadLetter, len(letters))
	for i := range letters {
		each[i] = &letters[i]
	}
	return q.readEach(ctx, each)
}

// readEach reads letters' messages one by one, a few at a time.
func (q *Queries) readEach(ctx context.Context, letters []*store.DeadLetter) error {
	var (
		next   atomic.Int64
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
	)
	for range min(readers, len(letters)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(letters) && failed.Load() == nil; i = int(next.Add(1)) - 1 {
				if err := q.readMessage(ctx, letters[i]); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// readRange reads up to n messages from sequence lo on in one batched
// direct get: the server sends the messages it holds (stepping over
// deleted ones, stopping early at its byte limit for one answer), then an
// end-of-batch status (204), or a 404 when it holds none from lo on. last
// is the sequence of the last message sent, or the greatest there is
// (math.MaxUint64) when none was.
func (q *Queries) readRange(ctx context.Context, subject string, lo uint64, n int) (msgs map[uint64]*nats.Msg, last uint64, err error) {
	msgs = make(map[uint64]*nats.Msg, n)
	err = directget.Request(ctx, q.js.Conn(), subject, struct {
		Seq   uint64 `json:"seq"`
		Batch int    `json:"batch"`
	}{lo, n}, func(m *nats.Msg) error {
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return fmt.Errorf("direct get: a message without its sequence: %w", err)
		}
		m.Subject = m.Header.Get(jetstream.SubjectHeader)
		msgs[seq], last = m, seq
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if len(msgs) == 0 {
		last = math.MaxUint64 // the server holds none from lo on
	}
	return msgs, last, nil
}
