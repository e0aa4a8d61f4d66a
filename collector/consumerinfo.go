package collector

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sync"
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

// consumerConfig is a consumer's config: Raw as the server sent it, stored
// as it came, and the settings the sampler judges and shows in lists,
// decoded from Raw by settingsCache.resolve (configs rarely change, and
// decoding 100,000 of them took a quarter of a cycle's decoding).
type consumerConfig struct {
	consumerSettings
	Raw json.RawMessage
	// settingsErr says why the settings could not be decoded.
	settingsErr error
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
	// PauseUntil is when a paused consumer resumes, by the server's clock.
	PauseUntil *time.Time `json:"pause_until,omitempty"`
}

// UnmarshalJSON keeps a copy of the config's bytes; the settings are
// decoded once it is known whether they changed.
func (c *consumerConfig) UnmarshalJSON(data []byte) error {
	c.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// settingsCache keeps each consumer's settings with a hash of the config
// they were decoded from, so that an unchanged config is not decoded
// again. Safe for concurrent use: each stream's consumers are resolved
// as soon as they are read, so that the configs not needed are garbage
// while the rest is read.
type settingsCache struct {
	mu       sync.Mutex
	seed     maphash.Seed
	cycle    uint64
	byStream map[string]map[string]*cachedSettings // stream -> consumer
}

type cachedSettings struct {
	hash     uint64
	seen     uint64 // the cycle that last used it
	settings consumerSettings
}

func newSettingsCache() *settingsCache {
	return &settingsCache{seed: maphash.MakeSeed(), byStream: map[string]map[string]*cachedSettings{}}
}

// resolve fills the settings of info, a consumer of stream, from its raw
// config. A config unchanged since the last cycle is dropped (Raw nil):
// the index keeps the one it has, and the cycle does not carry 100,000
// configs to it.
func (c *settingsCache) resolve(stream string, info *consumerInfo) error {
	h := maphash.Bytes(c.seed, info.Config.Raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	consumers := c.byStream[stream]
	if e := consumers[info.Name]; e != nil && e.hash == h {
		info.Config.consumerSettings = e.settings
		info.Config.Raw = nil
		return nil
	}
	var settings consumerSettings
	if err := json.Unmarshal(info.Config.Raw, &settings); err != nil {
		return fmt.Errorf("decode the config of consumer %s/%s: %w", stream, info.Name, err)
	}
	if consumers == nil {
		consumers = map[string]*cachedSettings{}
		c.byStream[stream] = consumers
	}
	// Not seen yet: a consumer resolved and then left out of the cycle
	// (its stream deleted meanwhile) is forgotten, so that its config is
	// carried again should it come back.
	consumers[info.Name] = &cachedSettings{hash: h, seen: c.cycle - 1, settings: settings}
	info.Config.consumerSettings = settings
	return nil
}

// touch keeps the settings of a consumer that goes into this cycle, read
// or not: those of consumers the cycle leaves out are forgotten at its
// end, so that the cache never holds a config the index lacks.
func (c *settingsCache) touch(stream, consumer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byStream[stream][consumer]; e != nil {
		e.seen = c.cycle
	}
}

// endCycle forgets the consumers the cycle left out: deleted ones, and
// any whose stream went meanwhile.
func (c *settingsCache) endCycle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for stream, consumers := range c.byStream {
		for name, e := range consumers {
			if e.seen != c.cycle {
				delete(consumers, name)
			}
		}
		if len(consumers) == 0 {
			delete(c.byStream, stream)
		}
	}
	c.cycle++
}

// MarshalJSON writes the config as it came, so that an answer read
// again (tests, logs) says what the server said.
func (c consumerConfig) MarshalJSON() ([]byte, error) {
	if len(c.Raw) == 0 {
		return json.Marshal(c.consumerSettings)
	}
	return c.Raw, nil
}
