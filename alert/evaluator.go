package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/store"
)

// Names jetwatch uses in JetStream unless configured otherwise.
const (
	DefaultOutboxStream = "JETWATCH_ALERTS_OUTBOX"
	DefaultOutboxPrefix = "jetwatch.alerts.outbox"
	DefaultStateBucket  = "jetwatch_alerts"
	// DefaultDeliveriesStream records every delivery attempt.
	DefaultDeliveriesStream = "JETWATCH_ALERT_DELIVERIES"
	deliveriesPrefix        = "jetwatch.alerts.deliveries"
	defaultInterval         = 5 * time.Second
)

// Rule and instance states shown to operators.
const (
	StateInactive = "inactive"
	StatePending  = "pending"
	StateFiring   = "firing"
)

// EvaluatorConfig configures an Evaluator.
type EvaluatorConfig struct {
	// Rules returns the rules in force; a reload swaps what it returns.
	// Required.
	Rules func() *Rules
	// Index is the sampled state. Required.
	Index Index
	// DeadLetters lists dead letters. Required.
	DeadLetters DeadLetterList
	// Accounts returns jetwatch's own account's name and the other
	// accounts sampled in the last cycle, for rules with an account
	// pattern. Nil: jetwatch's own account only.
	Accounts func() (own string, others []store.Account)
	// DeadLetterAccounts are the other accounts whose dead letters
	// jetwatch captures (serve's --account), for dead-letter rules with
	// an account pattern. Defaults to none.
	DeadLetterAccounts []DeadLetterAccount
	// Interval between evaluations. Defaults to 5 seconds.
	Interval time.Duration
	// Outbox names the stream and subject prefix notifications go to.
	Outbox OutboxConfig
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Registerer receives jetwatch_alerts_firing. Defaults to none.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Evaluator evaluates the rules on an interval and publishes every
// transition to the outbox. Several replicas may each run one: firing
// episodes are shared through the KV bucket, and notifications carry a
// Nats-Msg-Id derived from the transition, so each is stored once.
type Evaluator struct {
	cfg    EvaluatorConfig
	js     jetstream.JetStream
	logger *slog.Logger
	firing *prometheus.GaugeVec

	// evaluating serializes evaluations; mu guards what pages read, so a
	// slow evaluation (NATS away) never blocks the dashboard.
	evaluating sync.Mutex
	pending    map[string]time.Time // fingerprint -> when the condition began

	mu       sync.Mutex
	kv       jetstream.KeyValue
	statuses []RuleStatus
	lastRun  time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// NewEvaluator checks cfg and fills its defaults.
func NewEvaluator(js jetstream.JetStream, cfg EvaluatorConfig) (*Evaluator, error) {
	if cfg.Rules == nil || cfg.Index == nil || cfg.DeadLetters == nil {
		return nil, errors.New("alert: Rules, Index and DeadLetters are required")
	}
	cfg.Interval = cmp.Or(cfg.Interval, defaultInterval)
	cfg.Outbox = cfg.Outbox.withDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Evaluator{cfg: cfg, js: js, logger: cfg.Logger.With("component", "alerts"), pending: map[string]time.Time{},
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jetwatch_alerts_firing", Help: "Instances of each alert rule firing now.",
		}, []string{"rule"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(e.firing); err != nil {
			return nil, fmt.Errorf("alert: register metrics: %w", err)
		}
	}
	return e, nil
}

// Start creates the outbox stream and state bucket when missing, then
// evaluates every Interval until Stop or ctx ends.
func (e *Evaluator) Start(ctx context.Context) error {
	kv, err := EnsureOutbox(ctx, e.js, e.cfg.Outbox)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.kv = kv
	e.mu.Unlock()
	ctx, e.cancel = context.WithCancel(ctx)
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		t := time.NewTicker(e.cfg.Interval)
		defer t.Stop()
		for {
			if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
				e.logger.Error("alert evaluation failed; retrying next interval", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the evaluation loop. Safe to call twice.
func (e *Evaluator) Stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
}

// Evaluate runs every rule once and publishes the transitions. A rule
// whose data cannot be read keeps its state and reports the error.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	e.evaluating.Lock()
	defer e.evaluating.Unlock()
	kv, err := e.bucket(ctx)
	if err != nil {
		return err
	}
	rules := e.cfg.Rules()
	now := e.cfg.Now()
	st, err := loadState(ctx, kv)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var statuses []RuleStatus
	var errs []error
	for _, r := range rules.Rules {
		rs := RuleStatus{Rule: r, State: StateInactive}
		obs, err := e.observe(ctx, r, now, st.firing)
		if err != nil {
			rs.Error = "cannot read the data this rule needs: " + err.Error()
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
			// Unknown is not resolved: its firing episodes go on. (Its
			// pending instances start their for period again.)
			for fp, ep := range st.episodes {
				if ep.Rule == r.Name {
					seen[fp] = true
				}
			}
			statuses = append(statuses, rs)
			continue
		}
		for _, o := range obs {
			fp := fingerprint(r.Name, o.Labels)
			seen[fp] = true
			inst := Instance{Fingerprint: fp, Labels: o.Labels, Summary: o.Summary, Value: o.Value, Silence: st.silenced(r.Name, fp, now)}
			if ep, ok := st.episodes[fp]; ok {
				e.continueFiring(ctx, rules, r, ep, o, inst.Silence, now)
				inst.State, inst.Since, inst.AckedBy, inst.AckedAt, inst.AckNote = StateFiring, ep.StartsAt, ep.AckedBy, ep.AckedAt, ep.AckNote
			} else {
				since := o.Since
				if since.IsZero() {
					var ok bool
					if since, ok = e.pending[fp]; !ok {
						since = now
					}
				}
				e.pending[fp] = since
				inst.State, inst.Since = StatePending, since
				if now.Sub(since) >= r.hold() {
					if err := e.fire(ctx, rules, r, fp, o, since, inst.Silence, now); err != nil {
						errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
					} else {
						delete(e.pending, fp)
						inst.State = StateFiring
					}
				}
			}
			rs.Instances = append(rs.Instances, inst)
		}
		// Firing instances whose condition cleared fire on for the rule's
		// keep_firing_for; the rest resolve below.
		for fp, ep := range st.episodes {
			if ep.Rule != r.Name || seen[fp] || !e.keepFiring(ctx, r, ep, now) {
				continue
			}
			seen[fp] = true
			e.resendIfDue(ctx, rules, r, ep, now)
			rs.Instances = append(rs.Instances, Instance{Fingerprint: fp, State: StateFiring, Labels: ep.Labels, Summary: ep.Summary,
				Value: ep.Value, Since: ep.StartsAt, Silence: st.silenced(r.Name, fp, now), AckedBy: ep.AckedBy, AckedAt: ep.AckedAt,
				AckNote: ep.AckNote, ClearedAt: ep.ClearedAt, ResolvesAt: ep.ClearedAt.Add(r.KeepFiring())})
		}
		slices.SortFunc(rs.Instances, func(a, b Instance) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
		for _, inst := range rs.Instances {
			if inst.State == StateFiring || (inst.State == StatePending && rs.State == StateInactive) {
				rs.State = inst.State
			}
		}
		statuses = append(statuses, rs)
	}
	// A pending instance whose condition cleared was a blip: forget it.
	for fp := range e.pending {
		if !seen[fp] {
			delete(e.pending, fp)
		}
	}
	for fp, ep := range st.episodes {
		if !seen[fp] {
			if err := e.resolve(ctx, rules, ep, now); err != nil {
				errs = append(errs, fmt.Errorf("rule %s: %w", ep.Rule, err))
			}
		}
	}
	e.firing.Reset()
	for _, rs := range statuses {
		n := 0
		for _, inst := range rs.Instances {
			if inst.State == StateFiring {
				n++
			}
		}
		e.firing.WithLabelValues(rs.Rule.Name).Set(float64(n))
	}
	e.mu.Lock()
	e.statuses, e.lastRun = statuses, now
	e.mu.Unlock()
	return errors.Join(errs...)
}

// fire starts an episode and notifies its receivers. When another replica
// started the same episode first, its start time is adopted, so both
// publish the same notification ids.
func (e *Evaluator) fire(ctx context.Context, rules *Rules, r Rule, fp string, o observation, since time.Time, silence *Silence, now time.Time) error {
	ep := &episode{Rule: r.Name, Fingerprint: fp, Labels: o.Labels, Summary: o.Summary, Value: o.Value,
		StartsAt: since.UTC(), FiredAt: now.UTC(), Sent: silence == nil, LastSentAt: now.UTC()}
	b, _ := json.Marshal(ep)
	if _, err := e.kv.Create(ctx, episodePrefix+fp, b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("record firing: %w", err)
		}
		entry, err := e.kv.Get(ctx, episodePrefix+fp)
		if err != nil {
			return fmt.Errorf("read firing another replica recorded: %w", err)
		}
		if err := json.Unmarshal(entry.Value(), ep); err != nil {
			return fmt.Errorf("read firing another replica recorded: %w", err)
		}
	}
	if !ep.Sent {
		e.logger.Info("alert firing, silenced", "rule", r.Name, "fingerprint", fp)
		return nil
	}
	e.logger.Info("alert firing", "rule", r.Name, "fingerprint", fp, "summary", o.Summary)
	return e.publish(ctx, rules, r, ep, StatusFiring, time.Time{}, now)
}

// continueFiring refreshes a firing episode, sends a reminder when the
// rule repeats and nobody acknowledged or silenced it, and re-sends it to
// Alertmanagers when due.
func (e *Evaluator) continueFiring(ctx context.Context, rules *Rules, r Rule, ep *episode, o observation, silence *Silence, now time.Time) {
	if !e.remind(ctx, rules, r, ep, o, silence, now) {
		e.resendIfDue(ctx, rules, r, ep, now)
	}
}

// remind refreshes a firing episode and sends a reminder when due. It
// says whether this cycle is done with the episode: a reminder went to
// every receiver, or another replica changed the episode first.
func (e *Evaluator) remind(ctx context.Context, rules *Rules, r Rule, ep *episode, o observation, silence *Silence, now time.Time) bool {
	ep.Summary, ep.Value = o.Summary, o.Value
	// The condition came back while the episode was kept firing: the same
	// episode goes on, with no new page.
	back := !ep.ClearedAt.IsZero()
	ep.ClearedAt = time.Time{}
	send := false
	switch {
	case silence != nil:
	case !ep.Sent:
		// It fired while silenced and still fires now the silence ended:
		// page now, as the first notification of this episode.
		send = true
	case r.Repeat <= 0 || ep.AckedBy != "" || now.Sub(ep.LastSentAt) < time.Duration(r.Repeat):
	default:
		ep.Repeats++
		send = true
	}
	if !send && !back {
		return false
	}
	if send {
		ep.LastSentAt, ep.Sent = now.UTC(), true
	}
	b, _ := json.Marshal(ep)
	rev, err := e.kv.Update(ctx, episodePrefix+ep.Fingerprint, b, ep.revision)
	if err != nil {
		// Another replica sent this reminder (or resolved it) first.
		return true
	}
	ep.revision = rev
	if !send {
		return false
	}
	if err := e.publish(ctx, rules, r, ep, StatusFiring, time.Time{}, now); err != nil {
		e.logger.Error("alert reminder not queued", "rule", r.Name, "err", err)
	}
	return true
}

// resendIfDue sends a firing episode again to each alertmanager-api
// receiver not sent it for its resend_every, as Prometheus re-sends every
// evaluation: Alertmanager otherwise resolves an alert after its
// resolve_timeout. Acknowledgements and silences do not stop it: a
// re-send pages nobody (Alertmanager deduplicates), while a stop would
// have Alertmanager announce a resolution that did not happen. An episode
// that fired silenced was never sent, so it is not re-sent either.
func (e *Evaluator) resendIfDue(ctx context.Context, rules *Rules, r Rule, ep *episode, now time.Time) {
	if !ep.Sent {
		return
	}
	var due []string
	for _, name := range r.Receivers {
		rc, ok := rules.Receiver(name)
		if !ok || rc.Format != FormatAlertmanagerAPI || rc.ResendEvery <= 0 {
			continue
		}
		last := ep.LastSentAt
		if t := ep.ResentAt[name]; t.After(last) {
			last = t
		}
		if now.Sub(last) >= time.Duration(rc.ResendEvery) {
			due = append(due, name)
		}
	}
	if len(due) == 0 {
		return
	}
	ep.Resends++
	if ep.ResentAt == nil {
		ep.ResentAt = map[string]time.Time{}
	}
	for _, name := range due {
		ep.ResentAt[name] = now.UTC()
	}
	b, _ := json.Marshal(ep)
	rev, err := e.kv.Update(ctx, episodePrefix+ep.Fingerprint, b, ep.revision)
	if err != nil {
		// Another replica re-sent it (or resolved it) first.
		return
	}
	ep.revision = rev
	var errs []error
	for _, name := range due {
		n := e.notification(name, r, ep, StatusFiring, time.Time{}, now)
		// Its own id: the outbox would drop it as a duplicate of the
		// firing otherwise, and replicas re-sending together store one.
		n.ID = notificationID(name, ep.Fingerprint, "resend", ep.StartsAt, ep.Resends)
		errs = append(errs, e.queue(ctx, n))
	}
	if err := errors.Join(errs...); err != nil {
		e.logger.Error("alert re-send to Alertmanager not queued", "rule", r.Name, "err", err)
	}
}

// keepFiring says whether a firing episode whose condition no longer holds
// fires on: for the rule's keep_firing_for after the condition cleared.
// When it cleared is recorded in the bucket, so replicas and a restarted
// jetwatch count from the same moment.
func (e *Evaluator) keepFiring(ctx context.Context, r Rule, ep *episode, now time.Time) bool {
	keep := r.KeepFiring()
	if keep <= 0 {
		return false
	}
	if ep.ClearedAt.IsZero() {
		ep.ClearedAt = now.UTC()
		b, _ := json.Marshal(ep)
		rev, err := e.kv.Update(ctx, episodePrefix+ep.Fingerprint, b, ep.revision)
		if err != nil {
			// Another replica changed it first; the next cycle reads its
			// version. Until then it fires on.
			return true
		}
		ep.revision = rev
	}
	return now.Sub(ep.ClearedAt) < keep
}

// resolve ends an episode and tells the receivers that were told it fired.
func (e *Evaluator) resolve(ctx context.Context, rules *Rules, ep *episode, now time.Time) error {
	err := e.kv.Delete(ctx, episodePrefix+ep.Fingerprint, jetstream.LastRevision(ep.revision))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		// Another replica changed it since: the next cycle decides again.
		return nil
	}
	r, ok := findRule(rules, ep.Rule)
	if !ok || !ep.Sent {
		return nil
	}
	e.logger.Info("alert resolved", "rule", ep.Rule, "fingerprint", ep.Fingerprint)
	ep.Repeats = 0 // a resolution is one message, whatever the reminders
	// It ended when the condition cleared, not when keep_firing_for ran out.
	return e.publish(ctx, rules, r, ep, StatusResolved, cmp.Or(ep.ClearedAt, now).UTC(), now)
}

func findRule(rules *Rules, name string) (Rule, bool) {
	for _, r := range rules.Rules {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}

// publish queues one notification per receiver of r in the outbox.
func (e *Evaluator) publish(ctx context.Context, rules *Rules, r Rule, ep *episode, status string, endsAt, now time.Time) error {
	var errs []error
	for _, name := range r.Receivers {
		if _, ok := rules.Receiver(name); !ok {
			continue
		}
		errs = append(errs, e.queue(ctx, e.notification(name, r, ep, status, endsAt, now)))
	}
	return errors.Join(errs...)
}

// notification is what receiver name is told about ep.
func (e *Evaluator) notification(name string, r Rule, ep *episode, status string, endsAt, now time.Time) Notification {
	return Notification{
		ID: notificationID(name, ep.Fingerprint, status, ep.StartsAt, ep.Repeats), Receiver: name,
		Rule: r.Name, Kind: r.Kind, Severity: r.Severity, Status: status, Labels: ep.Labels,
		Summary: cmp.Or(r.Summary, ep.Summary), Value: ep.Value, Fingerprint: ep.Fingerprint,
		StartsAt: ep.StartsAt, EndsAt: endsAt, Repeat: ep.Repeats, CreatedAt: now.UTC(),
	}
}

// queue puts n in the outbox, deduplicated by its id.
func (e *Evaluator) queue(ctx context.Context, n Notification) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	subject := e.cfg.Outbox.Prefix + "." + n.Receiver
	if _, err := e.js.Publish(ctx, subject, b, jetstream.WithMsgID(n.ID)); err != nil {
		return fmt.Errorf("queue notification to %s in %s: %w", n.Receiver, e.cfg.Outbox.Stream, err)
	}
	return nil
}

// RuleStatus is a rule and the state of its instances.
type RuleStatus struct {
	Rule      Rule       `json:"-"`
	State     string     `json:"state"`
	Instances []Instance `json:"instances"`
	// Error says why the rule could not be evaluated last time.
	Error string `json:"error,omitempty"`
}

// Instance is one pending or firing instance of a rule.
type Instance struct {
	Fingerprint string            `json:"fingerprint"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary"`
	Value       float64           `json:"value"`
	// Since is when the condition began.
	Since   time.Time `json:"since"`
	Silence *Silence  `json:"silence,omitempty"`
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
	AckNote string    `json:"ack_note,omitempty"`
	// ClearedAt, when set, is when the firing instance's condition
	// cleared: it fires on until ResolvesAt (the rule's keep_firing_for)
	// and resolves then, unless the condition comes back.
	ClearedAt  time.Time `json:"cleared_at,omitzero"`
	ResolvesAt time.Time `json:"resolves_at,omitzero"`
}

// Statuses returns each rule with its state at the last evaluation, in the
// file's order, and when that evaluation ran.
func (e *Evaluator) Statuses() ([]RuleStatus, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.statuses), e.lastRun
}

// hold is how long an instance stays pending before it fires, counted
// from the observation's own since when it has one (a breaker's first
// open). Stalled consumers already measure their idle time against for,
// so they fire as soon as they are observed.
func (r Rule) hold() time.Duration {
	if r.Kind == KindConsumerStalled {
		return 0
	}
	return time.Duration(r.For)
}

// defaultBreakerKeepFiringFor is how long a breaker must stay closed before
// its alert resolves: one good probe closes a breaker whose downstream may
// fail again a moment later, and that is still the same outage.
const defaultBreakerKeepFiringFor = time.Minute

// KeepFiring is how long an instance fires on after its condition
// cleared: the rule's keep_firing_for, or its kind's default.
func (r Rule) KeepFiring() time.Duration {
	if r.KeepFiringFor != nil {
		return time.Duration(*r.KeepFiringFor)
	}
	if r.Kind == KindBreakerOpen {
		return defaultBreakerKeepFiringFor
	}
	return 0
}

// Rules returns the rules in force.
func (e *Evaluator) Rules() *Rules { return e.cfg.Rules() }
