package dlq

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

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
	errs := make([]error, len(ids))
	locked := slices.Clone(ids)
	slices.Sort(locked)
	for _, id := range slices.Compact(locked) {
		defer r.lock(id)()
	}
	defer func() {
		for _, err := range errs {
			r.count(action, err)
		}
	}()
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	attempts, err := r.attemptsOf(ctx, ids)
	if err != nil {
		return fail(err)
	}
	lasts, err := r.lastActions(ctx, ids)
	if err != nil {
		return fail(err)
	}
	// A discard needs no payload.
	letters, err := r.queries.getMany(ctx, ids, action != ActionDiscard)
	if err != nil {
		return fail(err)
	}

	type step struct {
		i   int
		a   Action
		msg *nats.Msg
		// claim is the sequence of the start (or discard) record.
		claim uint64
		fut   jetstream.PubAckFuture
	}
	// A span per dead letter, children of ctx's (a bulk chunk's), ended
	// with each one's outcome.
	spans := make([]trace.Span, len(ids))
	stepOf := make([]*step, len(ids))
	defer func() {
		for i, span := range spans {
			if span == nil {
				continue
			}
			a := Action{DeadLetter: ids[i], Action: action}
			if stepOf[i] != nil {
				a = stepOf[i].a
			}
			endAction(span, a, errs[i])
		}
	}()
	wait := func(fut jetstream.PubAckFuture) (*jetstream.PubAck, error) {
		select {
		case ack := <-fut.Ok():
			return ack, nil
		case err := <-fut.Err():
			return nil, err
		case <-time.After(r.cfg.Timeout):
			return nil, fmt.Errorf("no acknowledgement within %s", r.cfg.Timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var applied []recorded
	now := time.Now().UTC()
	targets := map[string]targetAnswer{}

	// 1. The claims: a discard record, or a redelivery's start record,
	// each expecting the newest record the index knows of.
	var steps []*step
	for i, id := range ids {
		ictx, span := r.startAction(ctx, action, id)
		spans[i] = span
		d, ok := letters[id]
		if !ok {
			errs[i] = fmt.Errorf("dead letter %d: %w", id, store.ErrNotFound)
			continue
		}
		linkOriginal(span, d)
		st := &step{i: i, a: Action{DeadLetter: id, Action: action, Actor: actor, At: now, Note: note, Job: job}}
		stepOf[i] = st
		if errs[i] = admit(action, lasts[id], now, r.cfg.StaleAfter, job); errs[i] != nil {
			continue
		}
		if action == ActionRedeliver {
			st.a.Action, st.a.Attempt = ActionRedeliverStart, attempts[id]+1
			if st.msg, errs[i] = redelivery(d, RedeliverRequest{ID: id}, st.a.Attempt); errs[i] != nil {
				continue
			}
			if _, errs[i] = r.targetStream(ctx, st.msg.Subject, targets); errs[i] != nil {
				continue
			}
			tracecontext.Inject(ictx, st.msg.Header)
			st.a.Subject = st.msg.Subject
		}
		if st.fut, err = r.js.PublishMsgAsync(actionMsg(st.a), r.recordOpts(lasts[id].Seq)...); err != nil {
			errs[i] = fmt.Errorf("%w: recording the %s failed (%w); nothing was sent", ErrNATSUnavailable, st.a.Action, err)
			continue
		}
		steps = append(steps, st)
	}
	claimed := steps[:0]
	for _, st := range steps {
		ack, err := wait(st.fut)
		var seq uint64
		switch {
		case err == nil:
			seq = ack.Sequence
		case wrongLastSequence(err):
			// The index lagged behind the stream (another replica acted,
			// or this one's records were not applied yet): decide again
			// on the newest record, one at a time.
			if seq, errs[st.i] = r.claim(ctx, st.a); errs[st.i] != nil {
				continue
			}
		default:
			errs[st.i] = fmt.Errorf("%w: recording the %s failed (%w); nothing was sent", ErrNATSUnavailable, st.a.Action, err)
			continue
		}
		st.claim = seq
		applied = append(applied, recorded{seq, st.a})
		if action == ActionRedeliver {
			claimed = append(claimed, st)
		}
	}

	// 2. The sends, then 3. how each ended, right after its start.
	for _, st := range claimed {
		if st.fut, err = r.js.PublishMsgAsync(st.msg); err != nil {
			st.fut = nil
			st.a.Action, st.a.Note = ActionRedeliverFail, publishError(st.a.Subject, err).Error()
			errs[st.i] = publishError(st.a.Subject, err)
		}
	}
	for _, st := range claimed {
		if st.fut != nil {
			ack, err := wait(st.fut)
			if err != nil && ctx.Err() != nil {
				// Stopping: whether it was sent is not known. The start
				// stays the newest record, and the job resumes it under
				// the same message id.
				errs[st.i], st.fut = ctx.Err(), nil
				continue
			}
			if err != nil {
				errs[st.i] = publishError(st.a.Subject, err)
				st.a.Action, st.a.Note = ActionRedeliverFail, errs[st.i].Error()
			} else {
				st.a.Action = ActionRedeliver
				st.a.AckStream, st.a.AckSeq, st.a.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
			}
		}
		st.a.At = time.Now().UTC()
		if st.fut, err = r.js.PublishMsgAsync(actionMsg(st.a), r.recordOpts(st.claim)...); err != nil {
			st.fut = nil
			if errs[st.i] == nil {
				errs[st.i] = fmt.Errorf("%w (%v); redelivering it again finishes the record and will not send twice", ErrNotRecorded, err)
			}
		}
	}
	for _, st := range claimed {
		if st.fut == nil {
			continue
		}
		ack, err := wait(st.fut)
		if err != nil {
			if errs[st.i] == nil {
				errs[st.i] = fmt.Errorf("%w (%v); redelivering it again finishes the record and will not send twice", ErrNotRecorded, err)
			}
			continue
		}
		applied = append(applied, recorded{ack.Sequence, st.a})
		if st.a.Action == ActionRedeliver && st.a.Duplicate {
			errs[st.i] = ErrAlreadyRedelivered
		}
	}
	r.applyOrLog(ctx, applied)
	return errs
}

// attemptsOf counts the recorded redeliveries of each dead letter.
func (r *Redeliverer) attemptsOf(ctx context.Context, ids []uint64) (map[uint64]int, error) {
	return r.db.CountDeadLetterActions(ctx, ids, ActionRedeliver)
}
