package redeliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// Actions on one dead letter are serialized through JetStream, so that of
// two replicas acting at once exactly one wins. Every record on a dead
// letter's subject (jetwatch.dlq.actions.<id>) is published expecting the
// subject's last sequence the publisher decided on; the server refuses it
// if anything was recorded in between. A redelivery is three records: it
// starts (the claim, before anything is sent), then the message is sent,
// then it ends as redelivered (with the publish ack) or failed (nothing
// was sent; the dead letter is pending again).

// ErrInProgress is returned while another redelivery of the dead letter
// is under way.
var ErrInProgress = errors.New("a redelivery of this dead letter is under way")

// ErrInterrupted refuses to discard a dead letter whose redelivery was
// interrupted: it may have been sent.
var ErrInterrupted = errors.New("a redelivery of this dead letter was interrupted and may have been sent: redeliver it again to finish (it will not send twice)")

// admit says whether action, by bulk job job (or none), may follow last:
// the status is the last record's. A redelivery that started more than
// stale ago without ending was interrupted, so redelivering again may
// resume it; a job resumes its own at once, as its lease makes it the
// only one running.
func admit(action string, last store.LastDeadLetterAction, now time.Time, stale time.Duration, job string) error {
	switch last.Action {
	case dlq.ActionDiscard:
		return ErrAlreadyDiscarded
	case dlq.ActionRedeliver:
		return ErrAlreadyRedelivered
	case dlq.ActionRedeliverStart:
		if action == dlq.ActionDiscard {
			if now.Sub(last.At) < stale {
				return ErrInProgress
			}
			return ErrInterrupted
		}
		if now.Sub(last.At) < stale && (job == "" || last.Job != job) {
			return ErrInProgress
		}
	}
	return nil
}

// wrongLastSequence says whether a publish was refused because the subject
// moved on: another replica recorded an action first.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// actionSubject is where the actions on dead letter id are recorded.
func actionSubject(id uint64) string {
	return dlq.ActionSubjectPrefix + strconv.FormatUint(id, 10)
}

// actionMsg is an action as recorded in the actions stream. It carries no
// message id: the expected last sequence, not deduplication, makes a
// record happen once.
func actionMsg(a dlq.Action) *nats.Msg {
	data, _ := json.Marshal(a) // plain struct: cannot fail
	msg := nats.NewMsg(actionSubject(a.DeadLetter))
	msg.Data = data
	return msg
}

// recordOpts are the publish options of a record expecting last as the
// subject's last sequence (0: nothing recorded yet).
func (r *Redeliverer) recordOpts(last uint64) []jetstream.PublishOpt {
	return []jetstream.PublishOpt{jetstream.WithExpectStream(r.cfg.ActionsStream), jetstream.WithExpectLastSequencePerSubject(last)}
}

// lastActions reads the newest recorded action of each dead letter from
// the index. The index may lag behind another replica: a record made on
// that stale view is refused by the server, and the truth read then.
func (r *Redeliverer) lastActions(ctx context.Context, ids []uint64) (map[uint64]store.LastDeadLetterAction, error) {
	return r.db.LastDeadLetterActions(ctx, ids)
}

// lastActionRecorded reads the newest action on dead letter id from the
// actions stream, the truth when the index lagged, and applies it to the
// index so the pages show it too.
func (r *Redeliverer) lastActionRecorded(ctx context.Context, id uint64) (store.LastDeadLetterAction, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	s, err := r.js.Stream(ctx, r.cfg.ActionsStream)
	if err != nil {
		return store.LastDeadLetterAction{}, fmt.Errorf("%w: reading the actions of dead letter %d: %w", ErrNATSUnavailable, id, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, actionSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return store.LastDeadLetterAction{}, nil
	}
	if err != nil {
		return store.LastDeadLetterAction{}, fmt.Errorf("%w: reading the actions of dead letter %d: %w", ErrNATSUnavailable, id, err)
	}
	var a dlq.Action
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return store.LastDeadLetterAction{}, fmt.Errorf("the last action on dead letter %d (actions #%d) is not an action: %w", id, m.Sequence, err)
	}
	if err := r.applyLocally(ctx, []recorded{{m.Sequence, a}}); err != nil {
		r.cfg.Logger.Warn("the index did not take an action read from the actions stream; it will when it reads that far", "dead_letter", id, "err", err)
	}
	return store.LastDeadLetterAction{Seq: m.Sequence, Action: a.Action, At: a.At, Job: a.Job}, nil
}

// claim records a (the start of a redelivery, or a discard) as the next
// action on its dead letter, deciding on the newest record it knows and
// reading the newest from the stream when another replica moved first.
// It returns the record's sequence; an error means nothing was recorded.
func (r *Redeliverer) claim(ctx context.Context, a dlq.Action) (uint64, error) {
	lasts, err := r.lastActions(ctx, []uint64{a.DeadLetter})
	if err != nil {
		return 0, err
	}
	last := lasts[a.DeadLetter]
	for try := 0; ; try++ {
		if err := admit(a.Action, last, a.At, r.cfg.StaleAfter, a.Job); err != nil {
			return 0, err
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		ack, err := r.js.PublishMsg(pctx, actionMsg(a), r.recordOpts(last.Seq)...)
		cancel()
		if err == nil {
			r.applyOrLog(ctx, []recorded{{ack.Sequence, a}})
			return ack.Sequence, nil
		}
		if !wrongLastSequence(err) || try == 2 {
			return 0, fmt.Errorf("%w: recording the %s of dead letter %d failed (%w); nothing was sent", ErrNATSUnavailable, a.Action, a.DeadLetter, err)
		}
		if last, err = r.lastActionRecorded(ctx, a.DeadLetter); err != nil {
			return 0, err
		}
	}
}

// recordAfter records how a started redelivery ended, right after its
// start record.
func (r *Redeliverer) recordAfter(ctx context.Context, a dlq.Action, start uint64) error {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	ack, err := r.js.PublishMsg(pctx, actionMsg(a), r.recordOpts(start)...)
	if err != nil {
		return fmt.Errorf("%w (%v); redelivering it again finishes the record and will not send twice", ErrNotRecorded, err)
	}
	r.applyOrLog(ctx, []recorded{{ack.Sequence, a}})
	return nil
}

// recorded is an action with its sequence in the actions stream.
type recorded struct {
	seq uint64
	a   dlq.Action
}

// applyLocally applies records to the index at once, so the page that
// follows shows them; the index applies them again from the stream, once.
func (r *Redeliverer) applyLocally(ctx context.Context, recs []recorded) error {
	rows := make([]store.DeadLetterAction, len(recs))
	for i, rec := range recs {
		var err error
		if rows[i], err = rec.a.Row(rec.seq); err != nil {
			return err
		}
	}
	return r.db.ApplyDeadLetterActions(ctx, rows, "", 0)
}

// applyOrLog is applyLocally for records already in JetStream: the action
// happened, and the index catches up from the stream, so a local failure
// (a full disk) is logged, not answered as a failed action.
func (r *Redeliverer) applyOrLog(ctx context.Context, recs []recorded) {
	// What JetStream holds is applied even when the caller is stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()
	if err := r.applyLocally(ctx, recs); err != nil {
		r.cfg.Logger.Warn("actions are recorded in JetStream, but the index did not take them yet; it will when it reads the actions stream",
			"actions", len(recs), "err", err)
	}
}
