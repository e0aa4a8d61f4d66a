package dlq

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/internal/tracecontext"
	"github.com/jetwatch/jetwatch/store"
)

// ActMany redelivers (to each origin subject) or discards many dead
// letters at once, with the same guarantees as one at a time: the sends and
// then the records go out together and are applied to the index in one
// transaction. It returns each dead letter's outcome, in the order of ids.
// Bulk jobs use it; one send at a time waits for every acknowledgement.
func (r *Redeliverer) ActMany(ctx context.Context, action string, ids []uint64, actor, note string) []error {
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
	// Attempts before statuses, as in Redeliver.
	attempts, err := r.attemptsOf(ctx, ids)
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
		fut jetstream.PubAckFuture
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
	now := time.Now().UTC()
	targets := map[string]targetAnswer{}
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
		st := &step{i: i, a: Action{DeadLetter: id, Action: action, Actor: actor, At: now, Note: note}}
		stepOf[i] = st
		if action == ActionDiscard {
			if errs[i] = settled(d.Status); errs[i] == nil {
				steps = append(steps, st)
			}
			continue
		}
		st.a.Attempt = attempts[id] + 1
		msg, err := redelivery(d, RedeliverRequest{ID: id}, st.a.Attempt)
		if err != nil {
			errs[i] = err
			continue
		}
		if _, err := r.targetStream(ctx, msg.Subject, targets); err != nil {
			errs[i] = err
			continue
		}
		tracecontext.Inject(ictx, msg.Header)
		st.a.Subject = msg.Subject
		if st.fut, err = r.js.PublishMsgAsync(msg); err != nil {
			errs[i] = publishError(msg.Subject, err)
			continue
		}
		steps = append(steps, st)
	}
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
	sent := steps[:0]
	for _, st := range steps {
		if st.fut != nil {
			ack, err := wait(st.fut)
			if err != nil {
				errs[st.i] = publishError(st.a.Subject, err)
				continue
			}
			st.a.AckStream, st.a.AckSeq, st.a.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
		}
		if st.fut, err = r.js.PublishMsgAsync(actionMsg(st.a), jetstream.WithExpectStream(r.cfg.ActionsStream)); err != nil {
			errs[st.i] = fmt.Errorf("%w (%v); retrying is safe: it will not send twice", ErrNotRecorded, err)
			continue
		}
		sent = append(sent, st)
	}
	tx, err := r.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("apply actions: %w", err))
	}
	defer tx.Rollback()
	for _, st := range sent {
		ack, err := wait(st.fut)
		if err != nil {
			errs[st.i] = fmt.Errorf("%w (%v); retrying is safe: it will not send twice", ErrNotRecorded, err)
			continue
		}
		if err := applyAction(ctx, tx, ack.Sequence, st.a); err != nil {
			return fail(err)
		}
		if st.a.Duplicate {
			errs[st.i] = ErrAlreadyRedelivered
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("apply actions: %w", err))
	}
	return errs
}

// attemptsOf counts the recorded redeliveries of each dead letter.
func (r *Redeliverer) attemptsOf(ctx context.Context, ids []uint64) (map[uint64]int, error) {
	out := map[uint64]int{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{ActionRedeliver}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := r.db.SQL().QueryContext(ctx, `SELECT dead_letter_id, COUNT(*) FROM dead_letter_actions
		WHERE action = ? AND dead_letter_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`) GROUP BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("count redeliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uint64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count redeliveries: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
