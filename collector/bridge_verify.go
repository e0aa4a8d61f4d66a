package collector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/store"
)

// original is what the bridge copies for an advisory it believes.
type original struct {
	// msg is the failed message; nil when its payload is not copied, and
	// unavailable says why.
	msg         *storedMsg
	unavailable string
	// unverified: the consumer (or its stream) is gone, so the advisory
	// could not be checked; the dead letter is recorded without payload.
	unverified   bool
	streamExists bool
}

// verify checks an advisory's claim against the server before anything is
// copied: the consumer exists on that stream, it can have delivered that
// message (acknowledging consumer, sequence within what it delivered and
// after its start, subject within its filter), and a max_deliver
// advisory's deliveries reach its MaxDeliver.
//
// nats-server 2.15 sends max_deliver with deliveries = MaxDeliver (the
// next delivery is refused) or MaxDeliver+1 (when the ack wait of the last
// one expires), and only while MaxDeliver > 0; terminated carries the
// delivery count of the Term, and the server's own terminations (by stream
// limits) are for pending messages, so within what was delivered.
//
// The consumer may be gone by the time the bridge looks (an ephemeral
// consumer is deleted soon after its service stops, and jetwatch may have
// been down): a real failure must not be lost, and a forged advisory must
// not leak a message. So the dead letter is recorded, marked unverified,
// without the payload. Its info may also have moved on: a MaxDeliver
// raised, or the consumer reset or recreated under the same name, after the
// failure; such an advisory is rejected, and its rejection shows on the
// events page with the stream, consumer and sequence. A request that fails
// (timeout, no responders) is an error: the advisory is retried.
func (b *Bridge) verify(ctx context.Context, a deliveryAdvisory) (original, *rejection, error) {
	var err error
	info := b.infos.get(a.Stream, a.Consumer)
	if info == nil || checkClaim(a, info) != nil {
		// Only a yes is taken from the cache: what it refutes may have
		// happened since, so fresh info decides.
		info, err = b.consumerInfo(ctx, a.Stream, a.Consumer)
	}
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeConsumerNotFound:
		return b.consumerGone(ctx, a)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return original{unverified: true, unavailable: fmt.Sprintf(
			"unverified: stream %s no longer exists, so jetwatch could not check this advisory against consumer %s and copied nothing",
			a.Stream, a.Consumer)}, nil, nil
	default:
		return original{}, nil, fmt.Errorf("look up consumer %s on %s: %w", a.Consumer, a.Stream, err)
	}
	if rej := checkClaim(a, info); rej != nil {
		return original{}, rej, nil
	}

	msg, err := b.getMsg(ctx, a.Stream, a.StreamSeq)
	switch {
	case err == nil:
		if rej := checkMessage(a, info, msg); rej != nil {
			return original{}, rej, nil
		}
		return original{msg: msg, streamExists: true}, nil, nil
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		b.fetchFailed.Inc()
		return original{unavailable: unavailableWhy(a, false), streamExists: true}, nil, nil
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		// Deleted since its consumer answered.
		b.fetchFailed.Inc()
		return original{unavailable: unavailableWhy(a, true), streamExists: true}, nil, nil
	default:
		b.fetchFailed.Inc()
		return original{}, nil, fmt.Errorf("fetch %s #%d: %w", a.Stream, a.StreamSeq, err)
	}
}

// consumerGone decides about an advisory whose consumer does not exist
// (any more, or ever): it is recorded unverified, without payload, unless
// the stream proves it false.
func (b *Bridge) consumerGone(ctx context.Context, a deliveryAdvisory) (original, *rejection, error) {
	last, err := b.streamLastSeq(ctx, a.Stream)
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return original{unverified: true, unavailable: fmt.Sprintf(
			"unverified: stream %s and its consumer %s no longer exist, so jetwatch could not check this advisory and copied nothing",
			a.Stream, a.Consumer)}, nil, nil
	case err != nil:
		return original{}, nil, fmt.Errorf("look up stream %s: %w", a.Stream, err)
	case a.StreamSeq > last:
		return original{}, reject(rejectNotDelivered, "%s advisory for #%d of stream %s, which holds nothing past #%d, from consumer %s, which does not exist",
			a.kind(), a.StreamSeq, clip(a.Stream), last, clip(a.Consumer)), nil
	}
	return original{unverified: true, streamExists: true, unavailable: fmt.Sprintf(
		"unverified: consumer %s is gone from stream %s, so jetwatch could not check this advisory and did not copy the payload (#%d may still be in %s)",
		a.Consumer, a.Stream, a.StreamSeq, a.Stream)}, nil, nil
}

// checkClaim checks an advisory against its consumer's info.
func checkClaim(a deliveryAdvisory, info *jetstream.ConsumerInfo) *rejection {
	c := info.Config
	switch {
	case c.AckPolicy == jetstream.AckNonePolicy:
		return reject(rejectNotDelivered, "%s advisory for consumer %s on %s, which acknowledges nothing and so never gives a message up",
			a.kind(), clip(a.Consumer), clip(a.Stream))
	case a.StreamSeq > info.Delivered.Stream:
		return reject(rejectNotDelivered, "%s advisory for #%d of %s, but consumer %s has delivered only up to #%d",
			a.kind(), a.StreamSeq, clip(a.Stream), clip(a.Consumer), info.Delivered.Stream)
	case c.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && a.StreamSeq < c.OptStartSeq:
		return reject(rejectNotDelivered, "%s advisory for #%d of %s, but consumer %s starts at #%d",
			a.kind(), a.StreamSeq, clip(a.Stream), clip(a.Consumer), c.OptStartSeq)
	case a.Type == typeMaxDeliver && (c.MaxDeliver <= 0 || a.Deliveries < uint64(c.MaxDeliver)):
		allows := "unlimited deliveries"
		if c.MaxDeliver > 0 {
			allows = "up to " + strconv.Itoa(c.MaxDeliver) + " deliveries"
		}
		return reject(rejectDeliveriesMismatch, "max_deliver advisory for #%d of %s after %d deliveries, but consumer %s allows %s",
			a.StreamSeq, clip(a.Stream), a.Deliveries, clip(a.Consumer), allows)
	}
	return nil
}

// checkMessage checks that the consumer's filter and start time let it
// receive msg: a stream sequence it passed is not one it delivered.
func checkMessage(a deliveryAdvisory, info *jetstream.ConsumerInfo, msg *storedMsg) *rejection {
	c := info.Config
	filters := c.FilterSubjects // the server allows this or FilterSubject, not both
	if c.FilterSubject != "" {
		filters = []string{c.FilterSubject}
	}
	if len(filters) > 0 && !matchesAny(filters, msg.Subject) {
		return reject(rejectNotDelivered, "%s advisory for #%d of %s, on subject %s, outside consumer %s's filter %s",
			a.kind(), a.StreamSeq, clip(a.Stream), clip(msg.Subject), clip(a.Consumer), clip(strings.Join(filters, ",")))
	}
	if c.DeliverPolicy == jetstream.DeliverByStartTimePolicy && c.OptStartTime != nil && msg.Time.Before(*c.OptStartTime) {
		return reject(rejectNotDelivered, "%s advisory for #%d of %s, stored before consumer %s's start time",
			a.kind(), a.StreamSeq, clip(a.Stream), clip(a.Consumer))
	}
	return nil
}

func matchesAny(filters []string, subject string) bool {
	for _, f := range filters {
		if store.SubjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// consumerInfoResponse is the JetStream API's answer to CONSUMER.INFO.
type consumerInfoResponse struct {
	jetstream.ConsumerInfo
	Error *jetstream.APIError `json:"error,omitempty"`
}

func (r *consumerInfoResponse) apiError() *jetstream.APIError { return r.Error }

// streamStateResponse is the part of the answer to STREAM.INFO the bridge
// reads.
type streamStateResponse struct {
	State struct {
		LastSeq uint64 `json:"last_seq"`
	} `json:"state"`
	Error *jetstream.APIError `json:"error,omitempty"`
}

func (r *streamStateResponse) apiError() *jetstream.APIError { return r.Error }

// consumerInfo asks the server about a consumer, and keeps the answer in
// b.infos. stream and consumer have passed natsname.Name.
func (b *Bridge) consumerInfo(ctx context.Context, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	var r consumerInfoResponse
	if err := apiRequest(ctx, b.nc, b.cfg.RequestTimeout, b.cfg.APIPrefix+".CONSUMER.INFO."+stream+"."+consumer, struct{}{}, &r); err != nil {
		return nil, err
	}
	b.infos.put(stream, consumer, &r.ConsumerInfo)
	return &r.ConsumerInfo, nil
}

// consumerInfos keeps consumers' info for a moment, so a burst of failures
// from one consumer asks the server once, not once per message.
type consumerInfos struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[streamConsumer]cachedInfo
}

type streamConsumer struct{ stream, consumer string }

type cachedInfo struct {
	info *jetstream.ConsumerInfo // read only once cached
	at   time.Time
}

// maxCachedInfos bounds the cache, whatever names advisories bring.
const maxCachedInfos = 1024

func newConsumerInfos(ttl time.Duration) *consumerInfos {
	return &consumerInfos{ttl: ttl, now: time.Now, m: map[streamConsumer]cachedInfo{}}
}

// get answers the consumer's info while it is fresh, else nil.
func (c *consumerInfos) get(stream, consumer string) *jetstream.ConsumerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[streamConsumer{stream, consumer}]
	if !ok || c.now().Sub(e.at) > c.ttl {
		return nil
	}
	return e.info
}

func (c *consumerInfos) put(stream, consumer string, info *jetstream.ConsumerInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= maxCachedInfos {
		for k, e := range c.m {
			if now.Sub(e.at) > c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedInfos {
			clear(c.m)
		}
	}
	c.m[streamConsumer{stream, consumer}] = cachedInfo{info: info, at: now}
}

func (b *Bridge) streamLastSeq(ctx context.Context, stream string) (uint64, error) {
	var r streamStateResponse
	if err := apiRequest(ctx, b.nc, b.cfg.RequestTimeout, b.cfg.APIPrefix+".STREAM.INFO."+stream, struct{}{}, &r); err != nil {
		return 0, err
	}
	return r.State.LastSeq, nil
}
