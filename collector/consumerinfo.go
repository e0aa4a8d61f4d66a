package collector

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumerInfo is what the sampler reads of a consumer in a CONSUMER.LIST
// or CONSUMER.INFO answer: only the fields it uses, and the config as the
// server sent it. Decoding jetstream.ConsumerInfo whole (its metadata
// maps, priority groups ...) and encoding its config again for the index
// cost a second of CPU per cycle at 100,000 consumers.
type consumerInfo struct {
	Stream         string                 `json:"stream_name"`
	Name           string                 `json:"name"`
	Created        time.Time              `json:"created"`
	Config         consumerConfig         `json:"config"`
	Delivered      jetstream.SequenceInfo `json:"delivered"`
	AckFloor       jetstream.SequenceInfo `json:"ack_floor"`
	NumAckPending  int                    `json:"num_ack_pending"`
	NumRedelivered int                    `json:"num_redelivered"`
	NumWaiting     int                    `json:"num_waiting"`
	NumPending     uint64                 `json:"num_pending"`
	Cluster        *jetstream.ClusterInfo `json:"cluster,omitempty"`
	PushBound      bool                   `json:"push_bound,omitempty"`
	TimeStamp      time.Time              `json:"ts"`
	Paused         bool                   `json:"paused,omitempty"`
	PauseRemaining time.Duration          `json:"pause_remaining,omitempty"`
}

// consumerConfig is the part of a consumer's config the sampler judges
// and shows in lists; Raw is the whole config, stored as it came.
type consumerConfig struct {
	consumerSettings
	Raw json.RawMessage
}

// consumerSettings are the config fields the sampler uses, under the
// server's JSON names.
type consumerSettings struct {
	Durable           string                  `json:"durable_name,omitempty"`
	Description       string                  `json:"description,omitempty"`
	DeliverPolicy     jetstream.DeliverPolicy `json:"deliver_policy"`
	AckPolicy         jetstream.AckPolicy     `json:"ack_policy"`
	AckWait           time.Duration           `json:"ack_wait,omitempty"`
	MaxDeliver        int                     `json:"max_deliver,omitempty"`
	BackOff           []time.Duration         `json:"backoff,omitempty"`
	FilterSubject     string                  `json:"filter_subject,omitempty"`
	FilterSubjects    []string                `json:"filter_subjects,omitempty"`
	ReplayPolicy      jetstream.ReplayPolicy  `json:"replay_policy"`
	MaxAckPending     int                     `json:"max_ack_pending,omitempty"`
	DeliverSubject    string                  `json:"deliver_subject,omitempty"`
	InactiveThreshold time.Duration           `json:"inactive_threshold,omitempty"`
}

// UnmarshalJSON keeps a copy of the config's bytes (data is the answer's
// buffer, reused) and decodes the fields used.
func (c *consumerConfig) UnmarshalJSON(data []byte) error {
	c.Raw = append(json.RawMessage(nil), data...)
	return json.Unmarshal(data, &c.consumerSettings)
}

// MarshalJSON writes the config as it came, so that an answer read
// again (tests, logs) says what the server said.
func (c consumerConfig) MarshalJSON() ([]byte, error) {
	if len(c.Raw) == 0 {
		return json.Marshal(c.consumerSettings)
	}
	return c.Raw, nil
}
