// Package directget asks a stream for several messages in one direct get:
// a batch from a sequence, or the last message of many subjects. The
// server answers with the messages, then an end-of-batch status.
package directget

import (
	"context"
	"encoding/json"
	"fmt"
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
// nats.ErrNoResponders; any other status is an error.
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
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		m, err := sub.NextMsgWithContext(rctx)
		if err != nil {
			return err
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
