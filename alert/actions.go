package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/natsname"
)

// ErrUnknownAlert is returned for a rule or instance that is not firing or
// not in the rules file.
var ErrUnknownAlert = errors.New("no such alert")

// ErrBadRequest wraps a silence or acknowledgement that cannot be done as
// asked.
var ErrBadRequest = errors.New("bad request")

// SilenceRequest mutes a rule, or one instance of it, for a duration.
type SilenceRequest struct {
	Rule        string        `json:"rule"`
	Fingerprint string        `json:"fingerprint,omitempty"`
	For         time.Duration `json:"-"`
	By          string        `json:"-"`
	Why         string        `json:"why"`
}

// Silence records a silence in the state bucket, where every replica sees
// it, and returns it. It expires on its own at its end.
func (e *Evaluator) Silence(ctx context.Context, req SilenceRequest) (Silence, error) {
	if _, ok := findRule(e.cfg.Rules(), req.Rule); !ok {
		return Silence{}, fmt.Errorf("%w: rule %q is not in the rules file", ErrUnknownAlert, req.Rule)
	}
	if req.For <= 0 || req.For > 30*24*time.Hour {
		return Silence{}, fmt.Errorf("%w: silence for between 1 minute and 30 days (like 30m, 4h)", ErrBadRequest)
	}
	if strings.TrimSpace(req.Why) == "" {
		return Silence{}, fmt.Errorf("%w: say why you silence it, so the next person on call knows", ErrBadRequest)
	}
	kv, err := e.bucket(ctx)
	if err != nil {
		return Silence{}, err
	}
	var id [8]byte
	rand.Read(id[:]) //nolint:errcheck // crypto/rand never fails on Linux
	now := e.cfg.Now().UTC()
	s := Silence{ID: hex.EncodeToString(id[:]), Rule: req.Rule, Fingerprint: req.Fingerprint,
		Until: now.Add(req.For), By: req.By, Why: strings.TrimSpace(req.Why), CreatedAt: now}
	b, _ := json.Marshal(s)
	if _, err := kv.Create(ctx, silencePrefix+s.ID, b); err != nil {
		return Silence{}, fmt.Errorf("record silence: %w", err)
	}
	e.logger.Info("alert silenced", "rule", s.Rule, "fingerprint", s.Fingerprint, "until", s.Until, "by", s.By, "why", s.Why)
	return s, nil
}

// Silences lists the silences in force, and removes those that ended.
func (e *Evaluator) Silences(ctx context.Context) ([]Silence, error) {
	kv, err := e.bucket(ctx)
	if err != nil {
		return nil, err
	}
	st, err := loadState(ctx, kv)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	var out []Silence
	for _, s := range st.silences {
		if now.Before(s.Until) {
			out = append(out, s)
			continue
		}
		kv.Delete(ctx, silencePrefix+s.ID) //nolint:errcheck // another replica may have removed it
	}
	return out, nil
}

// Acknowledge marks a firing instance as being handled: its reminders stop
// until it resolves.
func (e *Evaluator) Acknowledge(ctx context.Context, fp, by, note string) error {
	if !isFingerprint(fp) {
		// Never a key sent to NATS: a long one would cost the connection.
		return fmt.Errorf("%w: %.40q is not an alert instance's fingerprint (16 hex digits, as the alerts page shows)", ErrUnknownAlert, fp)
	}
	kv, err := e.bucket(ctx)
	if err != nil {
		return err
	}
	if natsname.Key(fp) != nil {
		return fmt.Errorf("%w: %.40q is not an alert instance", ErrUnknownAlert, fp)
	}
	for range 3 {
		entry, err := kv.Get(ctx, episodePrefix+fp)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: instance %s is not firing (it may have resolved)", ErrUnknownAlert, fp)
		}
		if err != nil {
			return fmt.Errorf("read firing alert: %w", err)
		}
		var ep episode
		if err := json.Unmarshal(entry.Value(), &ep); err != nil {
			return fmt.Errorf("read firing alert: %w", err)
		}
		ep.AckedBy, ep.AckedAt, ep.AckNote = by, e.cfg.Now().UTC(), strings.TrimSpace(note)
		b, _ := json.Marshal(ep)
		if _, err := kv.Update(ctx, episodePrefix+fp, b, entry.Revision()); err == nil {
			e.logger.Info("alert acknowledged", "rule", ep.Rule, "fingerprint", fp, "by", by)
			return nil
		}
		// Changed under us (an evaluation or a reminder): read again.
	}
	return errors.New("acknowledge: the alert kept changing; try again")
}

func (e *Evaluator) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kv != nil {
		return e.kv, nil
	}
	kv, err := EnsureOutbox(ctx, e.js, e.cfg.Outbox)
	if err != nil {
		return nil, err
	}
	e.kv = kv
	return kv, nil
}

// isFingerprint says whether fp has the shape fingerprint gives.
func isFingerprint(fp string) bool {
	if len(fp) != 16 {
		return false
	}
	_, err := hex.DecodeString(fp)
	return err == nil
}
