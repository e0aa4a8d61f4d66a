package pause

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq/redeliver"
	"github.com/jetwatch/jetwatch/internal/natsname"
	"github.com/jetwatch/jetwatch/store"
)

var (
	// ErrInvalid is wrapped when a request cannot be done as asked: a
	// malformed name, or a pause that ends in the past or too far ahead.
	ErrInvalid = errors.New("invalid pause request")
	// ErrRefused is wrapped for a consumer jetwatch does not pause: its
	// own, or one of a KV or object-store stream.
	ErrRefused = errors.New("refused")
	// ErrNotFound is wrapped when the stream or the consumer does not
	// exist on the server.
	ErrNotFound = errors.New("not found")
	// ErrNotConnected is wrapped when NATS could not be asked: nothing
	// was changed.
	ErrNotConnected = errors.New("not connected to NATS")
	// ErrNoAnswer is wrapped when NATS did not answer in time: the change
	// may or may not have been made. Pausing and resuming are idempotent,
	// so asking again is safe.
	ErrNoAnswer = errors.New("NATS did not answer in time")
)

// DefaultMaxPause is how far ahead a pause may end by default: a pause
// longer than a month is a consumer to delete, not to pause.
const DefaultMaxPause = 30 * 24 * time.Hour

// Config configures Consumers.
type Config struct {
	// MaxPause bounds how far ahead a pause may end. Defaults to
	// DefaultMaxPause (30 days).
	MaxPause time.Duration
	// OwnStreams are jetwatch's streams under names of the operator's
	// choosing (the DLQ and advisory streams): their consumers are
	// jetwatch's and are never paused. JETWATCH_* streams always are.
	OwnStreams []string
	// Timeout bounds each request to NATS. Defaults to 5 seconds.
	Timeout time.Duration
	// Now is the clock that judges the pause's end. Defaults to time.Now.
	Now func() time.Time
}

// Consumers pauses and resumes consumers.
type Consumers struct {
	js  jetstream.JetStream
	cfg Config
}

// New returns Consumers acting through js.
func New(js jetstream.JetStream, cfg Config) *Consumers {
	cfg.MaxPause = cmp.Or(cfg.MaxPause, DefaultMaxPause)
	cfg.Timeout = cmp.Or(cfg.Timeout, 5*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Consumers{js: js, cfg: cfg}
}

// State is a consumer's pause as the server answered it.
type State struct {
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Paused   bool   `json:"paused"`
	// PauseUntil is when the server resumes it by itself; nil when not
	// paused.
	PauseUntil     *time.Time `json:"pause_until"`
	PauseRemaining float64    `json:"pause_remaining_seconds"`
}

// Check is the one decision on whether a consumer may be paused or
// resumed, on every path: valid names, and neither jetwatch's own
// consumers (they keep its dead letters, advisories and records moving)
// nor the consumers of KV and object-store streams (watchers and readers
// of buckets, which NATS clients create and expect to deliver).
func (c *Consumers) Check(stream, consumer string) error {
	if err := natsname.Name(stream); err != nil {
		return fmt.Errorf("%w: stream: %w", ErrInvalid, err)
	}
	if err := natsname.Name(consumer); err != nil {
		return fmt.Errorf("%w: consumer: %w", ErrInvalid, err)
	}
	if redeliver.ReservedStream(stream, c.cfg.OwnStreams...) {
		return fmt.Errorf("%w: stream %s holds jetwatch's or NATS's own records (JETWATCH_*, KV_*, OBJ_* or jetwatch's DLQ and advisory streams): its consumers are not paused from here", ErrRefused, stream)
	}
	if store.OwnConsumerName(consumer, "") {
		return fmt.Errorf("%w: consumer %s is jetwatch's own (jetwatch-*, jetwatch_*): pausing it would stop jetwatch, not a service", ErrRefused, consumer)
	}
	return nil
}

// CheckUntil says whether a pause may end at until: after now, and no
// more than MaxPause ahead.
func (c *Consumers) CheckUntil(until time.Time) error {
	now := c.cfg.Now()
	switch {
	case !until.After(now):
		return fmt.Errorf("%w: until %s is not in the future (now is %s): give a time to resume at, or resume it now", ErrInvalid,
			until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case until.Sub(now) > c.cfg.MaxPause:
		return fmt.Errorf("%w: until %s is more than %s ahead: pause for at most %s, and pause again if it must stay paused", ErrInvalid,
			until.UTC().Format(time.RFC3339), maxText(c.cfg.MaxPause), maxText(c.cfg.MaxPause))
	}
	return nil
}

func maxText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// Pause pauses a consumer until a time: the server delivers nothing to it
// until then, or until it is resumed.
func (c *Consumers) Pause(ctx context.Context, stream, consumer string, until time.Time) (State, error) {
	if err := c.Check(stream, consumer); err != nil {
		return State{}, err
	}
	if err := c.CheckUntil(until); err != nil {
		return State{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := c.js.PauseConsumer(ctx, stream, consumer, until.UTC())
	return c.state(stream, consumer, resp, err, "pause")
}

// Resume resumes a paused consumer now; resuming one that is not paused
// changes nothing.
func (c *Consumers) Resume(ctx context.Context, stream, consumer string) (State, error) {
	if err := c.Check(stream, consumer); err != nil {
		return State{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := c.js.ResumeConsumer(ctx, stream, consumer)
	return c.state(stream, consumer, resp, err, "resume")
}

func (c *Consumers) state(stream, consumer string, resp *jetstream.ConsumerPauseResponse, err error, verb string) (State, error) {
	if err != nil {
		return State{}, c.classify(stream, consumer, err, verb)
	}
	s := State{Stream: stream, Consumer: consumer, Paused: resp.Paused}
	if resp.Paused {
		until := resp.PauseUntil.UTC()
		s.PauseUntil, s.PauseRemaining = &until, resp.PauseRemaining.Seconds()
	}
	return s, nil
}

// classify words a failed request for the operator.
func (c *Consumers) classify(stream, consumer string, err error, verb string) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeConsumerNotFound:
		return fmt.Errorf("%w: stream %s has no consumer %s: %w", ErrNotFound, stream, consumer, err)
	case errors.Is(err, jetstream.ErrStreamNotFound),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return fmt.Errorf("%w: there is no stream %s: %w", ErrNotFound, stream, err)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %s %s/%s: %w", ErrNotConnected, verb, stream, consumer, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w (%s): %s %s/%s: %w", ErrNoAnswer, c.cfg.Timeout, verb, stream, consumer, err)
	}
	return fmt.Errorf("%s consumer %s/%s: %w", verb, stream, consumer, err)
}
