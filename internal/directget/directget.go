// Package directget asks a stream for several messages in one direct get:
// a batch from a sequence, or the last message of many subjects. The
// server answers with the messages, then an end-of-batch status.
package directget

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// timeout bounds one answer.
const timeout = 5 * time.Second

// Subject is where direct gets of stream go for js, or "" when js reaches
// JetStream through a domain or another API prefix (callers then read
// message by message, through the client's own calls).
func Subject(js jetstream.JetStream, stream string) string {
	if o := js.Options(); o.Domain != "" || (o.APIPrefix != "" && o.APIPrefix != jetstream.DefaultAPIPrefix) {
		return ""
	}
	return "$JS.API.DIRECT.GET." + stream
}

// Request sends req (JSON-encoded) to subject and calls each for every
// message of the answer, until the end of the batch (204) or an answer of
// none found (404, each never called). No responders (503) is
// nats.ErrNoResponders; any other status is an error. It subscribes for
// the answer and unsubscribes after: a caller that asks often keeps a
// Client instead.
func Request(ctx context.Context, nc *nats.Conn, subject string, req any, each func(*nats.Msg) error) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the inbox is not reused
	if err := nc.PublishRequest(subject, inbox, body); err != nil {
		return err
	}
	return read(ctx, sub, inbox, each)
}

// Client sends direct gets and reads their answers through one
// subscription it keeps: a subscription per request costs a subscribe and
// an unsubscribe on the server, and nats.go allocates 512 KiB of channel
// for each. Its requests go one at a time: a Client is not for concurrent
// use.
type Client struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	prefix string // of each request's reply subject
	n      uint64 // requests sent
}

// NewClient subscribes to the replies of a new client on nc.
func NewClient(nc *nats.Conn) (*Client, error) {
	prefix := nc.NewInbox() + "."
	sub, err := nc.SubscribeSync(prefix + "*")
	if err != nil {
		return nil, fmt.Errorf("direct get: subscribe for answers: %w", err)
	}
	return &Client{nc: nc, sub: sub, prefix: prefix}, nil
}

// Request is Request through c's subscription. Each request has a reply
// subject of its own, so a late answer to one that timed out is skipped.
func (c *Client) Request(ctx context.Context, subject string, req any, each func(*nats.Msg) error) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c.n++
	reply := c.prefix + strconv.FormatUint(c.n, 10)
	if err := c.nc.PublishRequest(subject, reply, body); err != nil {
		return err
	}
	return read(ctx, c.sub, reply, each)
}

// Close unsubscribes.
func (c *Client) Close() error { return c.sub.Unsubscribe() }

// read reads the answer sent to reply from sub, skipping any other.
func read(ctx context.Context, sub *nats.Subscription, reply string, each func(*nats.Msg) error) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		m, err := sub.NextMsgWithContext(rctx)
		if err != nil {
			return err
		}
		if m.Subject != reply {
			continue
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			if err := each(m); err != nil {
				return err
			}
		case "204", "404":
			return nil
		case "503":
			return nats.ErrNoResponders
		default:
			return fmt.Errorf("direct get: %s %s", status, m.Header.Get("Description"))
		}
	}
}
