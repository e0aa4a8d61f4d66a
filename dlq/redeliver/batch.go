package redeliver

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// ActMany redelivers (to each origin subject) or discards many dead
// letters at once, with the same guarantees as one at a time (see claim):
// each step's records and sends go out together, and every record is
// applied to the index in one transaction. It returns each dead letter's
// outcome, in the order of ids. Bulk jobs use it; one send at a time waits
// for every acknowledgement. job names the bulk job acting, if any.
func (r *Redeliverer) ActMany(ctx context.Context, action string, ids []uint64, actor, note, job string) []error {
	locked := slices.Clone(ids)
	slices.Sort(locked)
	for _, id := range slices.Compact(locked) {
		defer r.lock(id)()
	}
	b := &batch{r: r, action: action, ids: ids, actor: actor, note: note, job: job,
		errs: make([]error, len(ids)), spans: make([]trace.Span, len(ids)), stepOf: make([]*step, len(ids)),
		targets: map[string]targetAnswer{}}
	defer b.end()
	if err := b.load(ctx); err != nil {
		b.failAll(err)
		return b.errs
	}
	b.claim(ctx)
	b.send()
	b.record(ctx)
	r.applyOrLog(ctx, b.applied)
	return b.errs
}

// batch is one ActMany: its dead letters, what each step did to them and
// how each ended.
type batch struct {
	r                *Redeliverer
	action           string
	ids              []uint64
	actor, note, job string
	errs             []error
	spans            []trace.Span
	stepOf           []*step
	targets          map[string]targetAnswer
	attempts         map[uint64]int
	lasts            map[uint64]store.LastDeadLetterAction
	letters          map[uint64]store.DeadLetter
	claimed          []*step // redeliveries whose start is recorded
	applied          []recorded
}

// step is one dead letter's way through the batch.
type step struct {
	i   int
	a   dlq.Action
	msg *nats.Msg
	// claim is the sequence of the start (or discard) record.
	claim uint64
	fut   jetstream.PubAckFuture
}

// load reads what the decisions need: attempts, the newest records, and
// the dead letters (with payload for a redelivery; a discard needs none).
func (b *batch) load(ctx context.Context) error {
	var err error
	if b.attempts, err = b.r.attemptsOf(ctx, b.ids); err != nil {
		return err
	}
	if b.lasts, err = b.r.lastActions(ctx, b.ids); err != nil {
		return err
	}
	if b.action == dlq.ActionDiscard {
		b.letters, err = b.r.queries.GetManyIndexed(ctx, b.ids)
	} else {
		b.letters, err = b.r.queries.GetMany(ctx, b.ids)
	}
	return err
}

// failAll gives err to every dead letter without an outcome yet.
func (b *batch) failAll(err error) {
	for i := range b.errs {
		if b.errs[i] == nil {
			b.errs[i] = err
		}
	}
}

// end counts the outcomes and ends each dead letter's span with its own.
func (b *batch) end() {
	for i, err := range b.errs {
		b.r.count(b.action, err)
		if b.spans[i] == nil {
			continue
		}
		a := dlq.Action{DeadLetter: b.ids[i], Action: b.action}
		if b.stepOf[i] != nil {
			a = b.stepOf[i].a
		}
		endAction(b.spans[i], a, err)
	}
}

// wait waits for fut's acknowledgement, at most the redeliverer's timeout.
func (b *batch) wait(ctx context.Context, fut jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-fut.Ok():
		return ack, nil
	case err := <-fut.Err():
		return nil, err
	case <-time.After(b.r.cfg.Timeout):
		return nil, fmt.Errorf("no acknowledgement within %s", b.r.cfg.Timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// claim records, for each dead letter that may be acted on, a discard or
// a redelivery's start, each expecting the newest record the index knows
// of; it keeps the redeliveries claimed.
func (b *batch) claim(ctx context.Context) {
	now := b.r.now()
	var steps []*step
	for i, id := range b.ids {
		ictx, span := b.r.startAction(ctx, b.action, id)
		b.spans[i] = span
		d, ok := b.letters[id]
		if !ok {
			b.errs[i] = fmt.Errorf("dead letter %d: %w", id, store.ErrNotFound)
			continue
		}
		linkOriginal(span, d)
		st := &step{i: i, a: dlq.Action{DeadLetter: id, Action: b.action, Actor: b.actor, At: now, Note: b.note, Job: b.job}}
		b.stepOf[i] = st
		if b.errs[i] = admit(b.action, b.lasts[id], now, b.r.cfg.StaleAfter, b.job); b.errs[i] != nil {
			continue
		}
		if b.action == dlq.ActionRedeliver {
			st.a.Action, st.a.Attempt = dlq.ActionRedeliverStart, b.attempts[id]+1
			if st.msg, b.errs[i] = redelivery(d, Request{ID: id}, st.a.Attempt); b.errs[i] != nil {
				continue
			}
			if _, b.errs[i] = b.r.targetStream(ctx, st.msg.Subject, b.targets); b.errs[i] != nil {
				continue
			}
			tracecontext.Inject(ictx, st.msg.Header)
			st.a.Subject = st.msg.Subject
		}
		var err error
		if st.fut, err = b.r.js.PublishMsgAsync(actionMsg(st.a), b.r.recordOpts(b.lasts[id].Seq)...); err != nil {
			b.errs[i] = fmt.Errorf("%w: recording the %s failed (%w); nothing was sent", ErrNATSUnavailable, st.a.Action, err)
			continue
		}
		steps = append(steps, st)
	}
	for _, st := range steps {
		ack, err := b.wait(ctx, st.fut)
		var seq uint64
		switch {
		case err == nil:
			seq = ack.Sequence
		case wrongLastSequence(err):
			// The index lagged behind the stream (another replica acted,
			// or this one's records were not applied yet): decide again
			// on the newest record, one at a time.
			if seq, b.errs[st.i] = b.r.claim(ctx, st.a); b.errs[st.i] != nil {
				continue
			}
		default:
			b.errs[st.i] = fmt.Errorf("%w: recording the %s failed (%w); nothing was sent", ErrNATSUnavailable, st.a.Action, err)
			continue
		}
		st.claim = seq
		b.applied = append(b.applied, recorded{seq, st.a})
		if b.action == dlq.ActionRedeliver {
			b.claimed = append(b.claimed, st)
		}
	}
}

// send publishes each claimed redelivery.
func (b *batch) send() {
	for _, st := range b.claimed {
		var err error
		if st.fut, err = b.r.js.PublishMsgAsync(st.msg); err != nil {
			st.fut = nil
			b.errs[st.i] = publishError(st.a.Subject, err)
			st.a.Action, st.a.Note = dlq.ActionRedeliverFail, b.errs[st.i].Error()
		}
	}
}

// record records how each claimed redelivery ended, right after its
// start: as each send's acknowledgement comes, its end record goes out.
// Then it waits for the records.
func (b *batch) record(ctx context.Context) {
	ends := make([]jetstream.PubAckFuture, len(b.claimed))
	for k, st := range b.claimed {
		if st.fut != nil {
			ack, err := b.wait(ctx, st.fut)
			switch {
			case err != nil && ctx.Err() != nil:
				// Stopping: whether it was sent is not known. The start
				// stays the newest record, and the job resumes it under
				// the same message id.
				b.errs[st.i] = ctx.Err()
				continue
			case err != nil:
				b.errs[st.i] = publishError(st.a.Subject, err)
				st.a.Action, st.a.Note = dlq.ActionRedeliverFail, b.errs[st.i].Error()
			default:
				st.a.Action = dlq.ActionRedeliver
				st.a.AckStream, st.a.AckSeq, st.a.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
			}
		}
		st.a.At = b.r.now()
		var err error
		if ends[k], err = b.r.js.PublishMsgAsync(actionMsg(st.a), b.r.recordOpts(st.claim)...); err != nil {
			ends[k] = nil
			if b.errs[st.i] == nil {
				b.errs[st.i] = fmt.Errorf("%w (%v); redelivering it again finishes the record and will not send twice", ErrNotRecorded, err)
			}
		}
	}
	for k, st := range b.claimed {
		if ends[k] == nil {
			continue
		}
		ack, err := b.wait(ctx, ends[k])
		if err != nil {
			if b.errs[st.i] == nil {
				b.errs[st.i] = fmt.Errorf("%w (%v); redelivering it again finishes the record and will not send twice", ErrNotRecorded, err)
			}
			continue
		}
		b.applied = append(b.applied, recorded{ack.Sequence, st.a})
		if st.a.Action == dlq.ActionRedeliver && st.a.Duplicate {
			b.errs[st.i] = ErrAlreadyRedelivered
		}
	}
}

// attemptsOf counts the recorded redeliveries of each dead letter.
func (r *Redeliverer) attemptsOf(ctx context.Context, ids []uint64) (map[uint64]int, error) {
	return r.db.CountDeadLetterActions(ctx, ids, dlq.ActionRedeliver)
}
