package redeliver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/deadletter"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natsname"
)

// ErrTargetRefused is wrapped when the redelivery target policy refuses a
// subject: sending there could reach the JetStream API, a KV bucket or
// jetwatch's own records instead of a service.
var ErrTargetRefused = errors.New("redelivery refused")

// ErrBadHeader is wrapped when a header of a redelivery cannot be sent.
var ErrBadHeader = errors.New("bad header")

// OwnSubjectPrefixes start the subjects jetwatch records on (actions,
// audit, alerts) and dead letters live on: never a redelivery target.
var OwnSubjectPrefixes = []string{"jetwatch.", dlq.SubjectPrefix + "."}

// TargetPolicy says where dead letters may be redelivered. Whatever it
// says, a target is never a $-subject ($JS, $KV, $O, $SYS...), an inbox,
// one of jetwatch's own subjects, or a subject captured by one of
// jetwatch's streams or by a KV_ or OBJ_ stream: only subjects a user
// stream captures.
type TargetPolicy struct {
	// OwnStreams are jetwatch's streams under names of the operator's
	// choosing (the DLQ and advisory streams); JETWATCH_* streams are
	// always jetwatch's.
	OwnStreams []string
	// Subjects, when not empty, narrows targets to subjects matching one
	// of these filters (--redeliver-subjects).
	Subjects []string
}

// Validate checks the policy's subject filters.
func (p TargetPolicy) Validate() error {
	for _, f := range p.Subjects {
		if err := natsname.Filter(f); err != nil {
			return fmt.Errorf("redeliver subject pattern %q: %w", f, err)
		}
	}
	return nil
}

// ReservedStream says whether a stream holds records that are not a
// service's messages: jetwatch's own streams, and the streams behind KV
// buckets and object stores.
func ReservedStream(name string, own ...string) bool {
	for _, o := range own {
		if name == o {
			return true
		}
	}
	return strings.HasPrefix(name, "JETWATCH_") || strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_")
}

// checkSubject applies every rule that needs no server: the subject is
// well formed, not reserved, and allowed by the operator's patterns.
func (p TargetPolicy) checkSubject(subject string) error {
	if err := natsname.Subject(subject); err != nil {
		return fmt.Errorf("%w %.80q: %w", ErrBadSubject, subject, err)
	}
	switch {
	case strings.HasPrefix(subject, "$"):
		return fmt.Errorf("%w: %.80q is a system subject ($JS, $KV, $SYS...): it reaches NATS itself, not a service", ErrTargetRefused, subject)
	case strings.HasPrefix(subject, "_INBOX.") || strings.HasPrefix(subject, "_R_."):
		return fmt.Errorf("%w: %.80q is a reply inbox, not a service's subject", ErrTargetRefused, subject)
	}
	for _, prefix := range OwnSubjectPrefixes {
		if strings.HasPrefix(subject, prefix) {
			return fmt.Errorf("%w: %.80q is one of jetwatch's own subjects (%s>)", ErrTargetRefused, subject, prefix)
		}
	}
	if len(p.Subjects) == 0 {
		return nil
	}
	for _, f := range p.Subjects {
		if subjectMatches(f, subject) {
			return nil
		}
	}
	return fmt.Errorf("%w: %.80q matches none of the subjects redeliveries may go to (--redeliver-subjects %s)", ErrTargetRefused, subject, strings.Join(p.Subjects, ","))
}

// checkStream refuses a subject captured by a reserved stream.
func (p TargetPolicy) checkStream(subject, stream string) error {
	if ReservedStream(stream, p.OwnStreams...) {
		return fmt.Errorf("%w: %.80q is captured by stream %s, which holds jetwatch's or NATS's own records", ErrTargetRefused, subject, stream)
	}
	return nil
}

// subjectMatches reports whether a literal subject matches a filter with
// * and > wildcards.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// targetStream applies the whole policy to subject and returns the stream
// that captures it. The send does not add Nats-Expected-Stream: the
// server keeps that header, and a service that copies the message's
// headers into a dead letter of its own would then fail to publish it.
// lookups, when not nil, caches answers for one batch.
func (r *Redeliverer) targetStream(ctx context.Context, subject string, lookups map[string]targetAnswer) (string, error) {
	if a, ok := lookups[subject]; ok {
		return a.stream, a.err
	}
	stream, err := r.lookupTarget(ctx, subject)
	if lookups != nil {
		// A failed lookup is kept too: a batch must not wait out one
		// timeout per dead letter while NATS does not answer.
		lookups[subject] = targetAnswer{stream, err}
	}
	return stream, err
}

type targetAnswer struct {
	stream string
	err    error
}

func (r *Redeliverer) lookupTarget(ctx context.Context, subject string) (string, error) {
	if err := r.cfg.Policy.checkSubject(subject); err != nil {
		return "", err
	}
	lctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	stream, err := r.js.StreamNameBySubject(lctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return "", fmt.Errorf("%w %s: nothing was sent, and the dead letter stays pending", ErrNoStream, subject)
	case err != nil:
		return "", fmt.Errorf("%w: could not ask NATS which stream captures %s (%w); nothing was sent", ErrNATSUnavailable, subject, err)
	}
	if err := r.cfg.Policy.checkStream(subject, stream); err != nil {
		return "", err
	}
	return stream, nil
}

// checkHeaders refuses headers that cannot travel as NATS headers: names
// must be HTTP tokens, values one line without NUL.
func checkHeaders(h map[string][]string) error {
	for name, values := range h {
		if !ValidHeaderName(name) {
			return fmt.Errorf("%w name %.80q: use letters, digits and -!#$%%&'*+.^_`|~ only, no spaces or colons", ErrBadHeader, name)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("%w %s: a value must be one line without NUL", ErrBadHeader, name)
			}
		}
	}
	return nil
}

// ValidHeaderName says whether name can be sent as a NATS header name: an
// HTTP token of at most 256 bytes.
func ValidHeaderName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-!#$%&'*+.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// serverHeader says whether a header is one the server acts on (Nats-*,
// whatever its case): a redelivery must never carry one of the
// original's or an operator's, only jetwatch's own Nats-Msg-Id.
func serverHeader(name string) bool {
	return len(name) >= 5 && strings.EqualFold(name[:5], "nats-")
}

// envelopeHeader is dlq.IsEnvelopeHeader in any case.
func envelopeHeader(name string) bool {
	return len(name) >= len(deadletter.HeaderPrefix) && strings.EqualFold(name[:len(deadletter.HeaderPrefix)], deadletter.HeaderPrefix)
}
