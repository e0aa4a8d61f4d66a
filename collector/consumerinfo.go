package collector

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"
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

	// durable says whether Durable was set: decodeSettings keeps this
	// and empties Durable.
	durable bool
}

// UnmarshalJSON keeps a copy of the config's bytes; the settings are
// decoded once it is known whether they changed.
func (c *consumerConfig) UnmarshalJSON(data []byte) error {
	c.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// settingsCache keeps each consumer's settings with a hash of the config
// they were decoded from, so that an unchanged config is not decoded
// again. Settings are shared: consumers set up alike (a service's
// replicas, a stream's consumers but for their names) point at one copy,
// as 100,000 copies were a tenth of the sampler's memory between cycles.
// Safe for concurrent use: each stream's consumers are resolved as soon
// as they are read, so that the configs not needed are garbage while the
// rest is read.
type settingsCache struct {
	mu       sync.Mutex
	seed     maphash.Seed
	cycle    uint64
	byStream map[string]map[string]cachedSettings // stream -> consumer
	shared   map[string]*sharedSettings           // by settingsKey
}

type cachedSettings struct {
	hash     uint64
	seen     uint64 // the cycle that last used it
	settings *sharedSettings
}

// sharedSettings are settings in use by refs consumers.
type sharedSettings struct {
	consumerSettings
	key  string
	refs int
}

func newSettingsCache() *settingsCache {
	return &settingsCache{seed: maphash.MakeSeed(), byStream: map[string]map[string]cachedSettings{}, shared: map[string]*sharedSettings{}}
}

// decodeSettings decodes the settings of a consumer's config.
func decodeSettings(raw []byte) (consumerSettings, error) {
	var settings consumerSettings
	err := json.Unmarshal(raw, &settings)
	settings.durable = settings.Durable != ""
	// Only whether there is a durable name is used: the name is the
	// consumer's, and leaving it out lets consumers share their settings.
	settings.Durable = ""
	return settings, err
}

// resolve fills the settings of info, a consumer of stream, from its raw
// config. A config unchanged since the last cycle is dropped (Raw nil):
// the index keeps the one it has, and the cycle does not carry 100,000
// configs to it.
func (c *settingsCache) resolve(stream string, info *consumerInfo) error {
	h := maphash.Bytes(c.seed, info.Config.Raw)
	c.mu.Lock()
	consumers := c.byStream[stream]
	if e, ok := consumers[info.Name]; ok && e.hash == h {
		info.Config.consumerSettings = e.settings.consumerSettings
		c.mu.Unlock()
		info.Config.Raw = nil
		return nil
	}
	c.mu.Unlock()
	settings, err := decodeSettings(info.Config.Raw)
	if err != nil {
		return fmt.Errorf("decode the config of consumer %s/%s: %w", stream, info.Name, err)
	}
	key := settingsKey(&settings)
	c.mu.Lock()
	defer c.mu.Unlock()
	consumers = c.byStream[stream]
	if consumers == nil {
		consumers = map[string]cachedSettings{}
		c.byStream[stream] = consumers
	}
	if old, ok := consumers[info.Name]; ok {
		c.release(old.settings)
	}
	shared := c.shared[key]
	if shared == nil {
		shared = &sharedSettings{consumerSettings: settings, key: key}
		c.shared[key] = shared
	}
	shared.refs++
	// Not seen yet: a consumer resolved and then left out of the cycle
	// (its stream deleted meanwhile) is forgotten, so that its config is
	// carried again should it come back.
	consumers[info.Name] = cachedSettings{hash: h, seen: c.cycle - 1, settings: shared}
	info.Config.consumerSettings = settings
	return nil
}

// release drops a consumer's use of shared settings.
func (c *settingsCache) release(s *sharedSettings) {
	if s.refs--; s.refs <= 0 {
		delete(c.shared, s.key)
	}
}

// settingsKey is the identity of settings: equal keys, equal settings.
// Every field of consumerSettings is in it (TestSettingsKeyCoversEveryField).
func settingsKey(s *consumerSettings) string {
	b := make([]byte, 0, 128)
	str := func(v string) {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	num := func(v int64) {
		b = strconv.AppendInt(b, v, 10)
		b = append(b, ',')
	}
	str(s.Durable)
	if s.durable {
		b = append(b, 'D')
	}
	b = append(b, ';')
	str(s.Description)
	num(int64(s.DeliverPolicy))
	num(int64(s.AckPolicy))
	num(int64(s.AckWait))
	num(int64(s.MaxDeliver))
	num(int64(len(s.BackOff)))
	for _, d := range s.BackOff {
		num(int64(d))
	}
	str(s.FilterSubject)
	num(int64(len(s.FilterSubjects)))
	for _, f := range s.FilterSubjects {
		str(f)
	}
	num(int64(s.ReplayPolicy))
	num(int64(s.MaxAckPending))
	str(s.DeliverSubject)
	num(int64(s.InactiveThreshold))
	if s.PauseUntil != nil {
		b = append(b, 'P')
		b = s.PauseUntil.AppendFormat(b, time.RFC3339Nano)
	}
	return string(b)
}

// touch keeps the settings of a consumer that goes into this cycle, read
// or not: those of consumers the cycle leaves out are forgotten at its
// end, so that the cache never holds a config the index lacks.
func (c *settingsCache) touch(stream, consumer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	consumers := c.byStream[stream]
	if e, ok := consumers[consumer]; ok {
		e.seen = c.cycle
		consumers[consumer] = e
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
				c.release(e.settings)
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
// again (tests, logs) says what the server said. Without it (a config
// unchanged since the last cycle) it writes the settings, which have no
// durable name (see decodeSettings).
func (c consumerConfig) MarshalJSON() ([]byte, error) {
	if len(c.Raw) == 0 {
		return json.Marshal(c.consumerSettings)
	}
	return c.Raw, nil
}
