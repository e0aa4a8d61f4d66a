package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiResponse is a JetStream API answer that may carry an error.
type apiResponse interface {
	apiError() *jetstream.APIError
}

func (r *msgGetResponse) apiError() *jetstream.APIError { return r.Error }

// apiRequest sends req as JSON to a JetStream API subject and decodes the
// answer into resp; an error in the answer is returned as a
// *jetstream.APIError, so callers can test its code.
func apiRequest(ctx context.Context, nc *nats.Conn, timeout time.Duration, subject string, req any, resp apiResponse) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", subject, err)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, subject, data)
	if err != nil {
		return err
	}
	if f, ok := resp.(fastDecoder); !ok || !f.decodeFast(msg.Data) {
		if err := json.Unmarshal(msg.Data, resp); err != nil {
			return fmt.Errorf("decode %s answer: %w", subject, err)
		}
	}
	if e := resp.apiError(); e != nil {
		return e
	}
	return nil
}
