package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Key prefixes in the alert state bucket.
const (
	episodePrefix = "firing."
	silencePrefix = "silence."
)

// episode is one firing of one rule instance, from the moment it fired
// until it resolves. It lives in the KV bucket so a restarted jetwatch, or
// another replica, continues it instead of paging again.
type episode struct {
	Rule        string            `json:"rule"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary"`
	Value       float64           `json:"value"`
	StartsAt    time.Time         `json:"starts_at"`
	FiredAt     time.Time         `json:"fired_at"`
	// Sent is false when the firing was silenced: its resolution is then
	// silent too.
	Sent       bool      `json:"sent"`
	Repeats    int       `json:"repeats"`
	LastSentAt time.Time `json:"last_sent_at"`
	AckedBy    string    `json:"acked_by,omitempty"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	AckNote    string    `json:"ack_note,omitempty"`
	// ClearedAt is when the condition stopped holding while the rule's
	// keep_firing_for keeps the episode firing; zero while it holds.
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	// ResentAt is when the episode was last re-sent to each
	// alertmanager-api receiver; Resends counts those re-sends, so each
	// has its own notification id.
	ResentAt map[string]time.Time `json:"resent_at,omitempty"`
	Resends  int                  `json:"resends,omitempty"`

	revision uint64
}

// Silence mutes a rule, or one instance of it, until a time.
type Silence struct {
	ID   string `json:"id"`
	Rule string `json:"rule"`
	// Fingerprint, when set, mutes that instance only.
	Fingerprint string    `json:"fingerprint,omitempty"`
	Until       time.Time `json:"until"`
	By          string    `json:"by"`
	Why         string    `json:"why"`
	CreatedAt   time.Time `json:"created_at"`
}

// Covers says whether the silence mutes an instance at now.
func (s Silence) Covers(rule, fp string, now time.Time) bool {
	return s.Rule == rule && (s.Fingerprint == "" || s.Fingerprint == fp) && now.Before(s.Until)
}

// state is what the KV bucket holds at one moment.
type state struct {
	episodes map[string]*episode
	silences []Silence
}

// firing says whether the instance with fingerprint fp is firing.
func (st state) firing(fp string) bool {
	_, ok := st.episodes[fp]
	return ok
}

// loadState reads every episode and silence. The bucket is small: one key
// per firing instance and per silence.
func loadState(ctx context.Context, kv jetstream.KeyValue) (state, error) {
	st := state{episodes: map[string]*episode{}}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return st, fmt.Errorf("list alert state: %w", err)
	}
	for _, k := range keys {
		entry, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return st, fmt.Errorf("read alert state %s: %w", k, err)
		}
		switch {
		case strings.HasPrefix(k, episodePrefix):
			var ep episode
			if err := json.Unmarshal(entry.Value(), &ep); err != nil {
				return st, fmt.Errorf("alert state %s is not an episode: %w", k, err)
			}
			ep.revision = entry.Revision()
			st.episodes[ep.Fingerprint] = &ep
		case strings.HasPrefix(k, silencePrefix):
			var s Silence
			if err := json.Unmarshal(entry.Value(), &s); err != nil {
				return st, fmt.Errorf("alert state %s is not a silence: %w", k, err)
			}
			st.silences = append(st.silences, s)
		}
	}
	return st, nil
}

func (st state) silenced(rule, fp string, now time.Time) *Silence {
	for i, s := range st.silences {
		if s.Covers(rule, fp, now) {
			return &st.silences[i]
		}
	}
	return nil
}
