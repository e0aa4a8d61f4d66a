package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"

	"github.com/jetwatch/jetwatch/internal/tracecontext"
)

// PublishOption adjusts a Publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	msgID    string
	header   nats.Header
	attempts int
	timeout  time.Duration
}

// WithMsgID sets the Nats-Msg-Id, for events that have a natural id (an
// order number); Publish makes one up otherwise.
func WithMsgID(id string) PublishOption { return func(o *publishOptions) { o.msgID = id } }

// WithHeader adds headers.
func WithHeader(h nats.Header) PublishOption { return func(o *publishOptions) { o.header = h } }

// WithAttempts sets how many times a publish that timed out is tried.
// Defaults to 3.
func WithAttempts(n int) PublishOption { return func(o *publishOptions) { o.attempts = n } }

// WithAttemptTimeout bounds each attempt. Defaults to 5 seconds.
func WithAttemptTimeout(d time.Duration) PublishOption {
	return func(o *publishOptions) { o.timeout = d }
}

// Publish publishes an event to JetStream the way the dashboard and the
// runner expect: with a Nats-Msg-Id, so a retried publish is stored once,
// and the trace context of ctx (traceparent) injected by the global
// OpenTelemetry propagator, so the handler's span continues the trace. A
// publish that times out is retried with the same id.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, data []byte, opts ...PublishOption) (*jetstream.PubAck, error) {
	o := publishOptions{attempts: 3, timeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.msgID == "" {
		var b [16]byte
		rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
		o.msgID = hex.EncodeToString(b[:])
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	for k, v := range o.header {
		msg.Header[k] = append([]string(nil), v...)
	}
	otel.GetTextMapPropagator().Inject(ctx, tracecontext.HeaderCarrier(msg.Header))
	msg.Header.Set(jetstream.MsgIDHeader, o.msgID)
	var err error
	for attempt := 1; attempt <= max(o.attempts, 1); attempt++ {
		actx, cancel := context.WithTimeout(ctx, o.timeout)
		var ack *jetstream.PubAck
		ack, err = js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			break
		}
	}
	return nil, fmt.Errorf("publish %s (Nats-Msg-Id %s): %w", subject, o.msgID, err)
}
