package alert

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/internal/human"
	"github.com/jetwatch/jetwatch/store"
)

// Index is the state rules are evaluated over. *store.DB implements it.
type Index interface {
	AllConsumers(ctx context.Context) ([]store.Consumer, error)
	Streams(ctx context.Context) ([]store.Stream, error)
	Breakers(ctx context.Context, now time.Time) ([]store.Breaker, error)
	Events(ctx context.Context, f store.EventFilter) ([]store.Event, error)
	StuckJourneys(ctx context.Context, q store.StuckJourneyQuery) ([]store.StuckJourney, error)
}

// DeadLetterAccount is another account's dead letters, under the name
// jetwatch gives the account.
type DeadLetterAccount struct {
	Name        string
	DeadLetters DeadLetterList
}

// DeadLetterList lists indexed dead letters. *query.Queries implements it.
type DeadLetterList interface {
	List(ctx context.Context, f store.DeadLetterFilter, limit int, cursor string) (store.DeadLetterPage, error)
}

// deadLetterScan bounds how many dead letters one evaluation reads per
// rule: enough to count past any sensible threshold.
const deadLetterScan = 2000

// observation is one instance of a rule whose condition holds now.
type observation struct {
	Labels  map[string]string
	Value   float64
	Summary string
	// Since, when set, is when the condition began by the data's own
	// account (a breaker's first open); the rule's for counts from it.
	Since time.Time
}

// matches reports whether a rule pattern (empty: anything) matches name.
func matches(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// observe returns the instances of r whose condition holds at now;
// firing says whether an instance (by fingerprint) is firing now.
func (e *Evaluator) observe(ctx context.Context, r Rule, now time.Time, firing func(fp string) bool) ([]observation, error) {
	switch r.Kind {
	case KindConsumerLag, KindConsumerStalled:
		consumers, err := e.cfg.Index.AllConsumers(ctx)
		if err != nil {
			return nil, err
		}
		var out []observation
		eachAccount(e, r, consumers, func(a *store.Account) []store.Consumer { return a.Consumers }, func(account string, cs []store.Consumer) {
			for _, c := range cs {
				if !matches(r.Stream, c.Stream) || !matches(r.Consumer, c.Name) {
					continue
				}
				labels := map[string]string{"stream": c.Stream, "consumer": c.Name}
				where := ""
				if account != "" {
					labels["account"], where = account, " in account "+account
				}
				if r.Kind == KindConsumerLag && len(r.States) > 0 {
					if o, ok := lagObservation(r, c, labels, firing); ok {
						o.Summary += where
						out = append(out, o)
					}
					continue
				}
				if r.Kind == KindConsumerLag && float64(c.NumPending) > r.Above {
					out = append(out, observation{Labels: labels, Value: float64(c.NumPending),
						Summary: fmt.Sprintf("consumer %s on %s%s has %d pending messages (above %g)%s", c.Name, c.Stream, where, c.NumPending, r.Above, pausedNote(c))})
				}
				// A paused consumer delivers and acknowledges nothing on
				// purpose: not stalled.
				if r.Kind == KindConsumerStalled && c.NumPending > 0 && !c.Paused {
					last := lastActivity(c)
					if idle := now.Sub(last); idle >= time.Duration(r.For) {
						out = append(out, observation{Labels: labels, Value: float64(c.NumPending),
							Summary: fmt.Sprintf("consumer %s on %s%s has %d pending and delivered or acked nothing for %s", c.Name, c.Stream, where, c.NumPending, human.Duration(idle))})
					}
				}
			}
		})
		return out, nil
	case KindStreamLimit:
		streams, err := e.cfg.Index.Streams(ctx)
		if err != nil {
			return nil, err
		}
		var out []observation
		eachAccount(e, r, streams, func(a *store.Account) []store.Stream { return a.Streams }, func(account string, ss []store.Stream) {
			for _, s := range ss {
				if !matches(r.Stream, s.Name) {
					continue
				}
				for _, u := range []struct {
					what string
					pct  *float64
				}{{"messages", s.Limits.MsgsUsedPct}, {"bytes", s.Limits.BytesUsedPct}} {
					if u.pct != nil && *u.pct > r.Above {
						labels := map[string]string{"stream": s.Name, "limit": u.what}
						where := ""
						if account != "" {
							labels["account"], where = account, " in account "+account
						}
						out = append(out, observation{Labels: labels, Value: *u.pct,
							Summary: fmt.Sprintf("stream %s%s uses %.1f%% of its max %s (above %g%%)", s.Name, where, *u.pct, u.what, r.Above)})
					}
				}
			}
		})
		return out, nil
	case KindBreakerOpen:
		breakers, err := e.cfg.Index.Breakers(ctx, now)
		if err != nil {
			return nil, err
		}
		var out []observation
		for _, b := range breakers {
			// Half open is the same outage, probing: it must neither
			// resolve the alert nor restart its for.
			if (b.State != store.BreakerOpen && b.State != store.BreakerHalfOpen) || !matches(r.Service, b.Service) ||
				!matches(r.Breaker, b.Breaker) || !matches(r.Stream, b.Stream) || !matches(r.Consumer, b.Consumer) {
				continue
			}
			state := "open"
			if b.State == store.BreakerHalfOpen {
				state = "half open (probing)"
			}
			out = append(out, observation{Labels: map[string]string{"service": b.Service, "breaker": b.Breaker},
				Value: now.Sub(b.Since).Seconds(), Since: b.Since,
				Summary: fmt.Sprintf("breaker %s of %s is %s, down since %s: %s", b.Breaker, b.Service, state,
					b.Since.UTC().Format(time.RFC3339), b.LastError)})
		}
		return out, nil
	case KindDeadLetterRate, KindDeadLetterMatch:
		if r.Account == "" {
			return e.observeDeadLetters(ctx, r, now, e.cfg.DeadLetters, "")
		}
		// With an account pattern: jetwatch's own account (under its
		// name) and each --account that matches, each instance labelled.
		var out []observation
		own := ""
		if e.cfg.Accounts != nil {
			own, _ = e.cfg.Accounts()
		}
		if matches(r.Account, own) {
			o, err := e.observeDeadLetters(ctx, r, now, e.cfg.DeadLetters, cmp.Or(own, "own"))
			if err != nil {
				return nil, err
			}
			out = append(out, o...)
		}
		for _, a := range e.cfg.DeadLetterAccounts {
			if !matches(r.Account, a.Name) {
				continue
			}
			o, err := e.observeDeadLetters(ctx, r, now, a.DeadLetters, a.Name)
			if err != nil {
				return nil, fmt.Errorf("account %s: %w", a.Name, err)
			}
			out = append(out, o...)
		}
		return out, nil
	case KindAdvisory:
		return e.observeAdvisories(ctx, r, now)
	case KindSagaStuck:
		return e.observeSagas(ctx, r, now)
	}
	return nil, fmt.Errorf("unknown kind %q", r.Kind)
}

// lagObservation is a consumer_lag rule with states on one consumer: it
// holds while the consumer's lag state is one of them (and, with above,
// more than above are pending). A firing instance then holds until the
// consumer has caught up, at most above (default 0) pending, whatever
// its state meanwhile (draining, or ok with a backlog left), and while it
// cannot be read: the incident ends when its backlog does, and a
// consumer that wavers between falling behind and draining pages once.
func lagObservation(r Rule, c store.Consumer, labels map[string]string, firing func(fp string) bool) (observation, bool) {
	holds := c.Unread == nil && slices.Contains(r.States, c.LagState) && (r.Above == 0 || float64(c.NumPending) > r.Above)
	if !holds && (c.Unread != nil || float64(c.NumPending) > r.Above) {
		holds = firing(fingerprint(r.Name, labels))
	}
	if !holds {
		return observation{}, false
	}
	var what string
	switch {
	case c.Unread != nil:
		what = fmt.Sprintf("could not be read (%s); it had %d pending", c.Unread.Why, c.NumPending)
	case c.LagState == store.LagFallingBehind:
		what = fmt.Sprintf("is falling behind: %d pending, %.1f/s arriving, %.1f/s acknowledged", c.NumPending, c.ArrivalPerSec, c.AckPerSec)
	case c.LagState == store.LagStalled:
		what = fmt.Sprintf("is stalled: %d pending, nothing acknowledged", c.NumPending)
	case c.LagState == store.LagStopped && c.DeletedAt != nil:
		what = "was deleted"
	case c.LagState == store.LagPaused || c.Paused:
		what = fmt.Sprintf("is paused with %d pending%s", c.NumPending, pausedNote(c))
	case c.LagState == store.LagStopped:
		what = fmt.Sprintf("is stopped: nobody is consuming, %d pending", c.NumPending)
	case c.LagState == store.LagDraining:
		what = fmt.Sprintf("is draining: %d pending", c.NumPending)
		if c.DrainSeconds != nil {
			what += fmt.Sprintf(", about %s to catch up", (time.Duration(*c.DrainSeconds) * time.Second).Round(time.Second))
		}
	default:
		what = fmt.Sprintf("is catching up: %d pending", c.NumPending)
	}
	return observation{Labels: labels, Value: float64(c.NumPending),
		Summary: fmt.Sprintf("consumer %s on %s %s", c.Name, c.Stream, what)}, true
}

// pausedNote says until when a paused consumer is paused, "" when it is
// not: a lag alert that holds for one says so.
func pausedNote(c store.Consumer) string {
	switch {
	case !c.Paused:
		return ""
	case c.PauseUntil != nil:
		return "; it is paused until " + c.PauseUntil.UTC().Format(time.RFC3339)
	}
	return "; it is paused"
}

// lastActivity is when the consumer last delivered or had an ack, or was
// created when it never did either.
func lastActivity(c store.Consumer) time.Time {
	last := c.Created
	for _, t := range []*time.Time{c.Delivered.LastActive, c.AckFloor.LastActive} {
		if t != nil && t.After(last) {
			last = *t
		}
	}
	return last
}

// observeDeadLetters counts dead letters per stream and consumer: those in
// the window for a rate, those still pending for a match (so the alert
// resolves once every match is redelivered or discarded).
// account, when not empty, labels each instance with the account list
// reads.
func (e *Evaluator) observeDeadLetters(ctx context.Context, r Rule, now time.Time, list DeadLetterList, account string) ([]observation, error) {
	f := store.DeadLetterFilter{Subject: r.Subject, Reason: r.Reason, Q: r.Search}
	if r.Kind == KindDeadLetterRate {
		f.Since = now.Add(-time.Duration(r.Window))
	} else {
		f.Status = store.StatusPending
	}
	if !strings.ContainsAny(r.Stream, "*?[") {
		f.Stream = r.Stream
	}
	if !strings.ContainsAny(r.Consumer, "*?[") {
		f.Consumer = r.Consumer
	}
	type key struct{ stream, consumer string }
	counts := map[key]int{}
	var order []key
	cursor := ""
	for read := 0; read < deadLetterScan; {
		page, err := list.List(ctx, f, 500, cursor)
		if err != nil {
			return nil, err
		}
		for _, d := range page.Items {
			if !matches(r.Stream, d.Stream) || !matches(r.Consumer, d.Consumer) {
				continue
			}
			k := key{d.Stream, d.Consumer}
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
		read += len(page.Items)
		if page.NextCursor == "" || len(page.Items) == 0 {
			break
		}
		cursor = page.NextCursor
	}
	var out []observation
	for _, k := range order {
		n := counts[k]
		labels := map[string]string{"stream": k.stream, "consumer": k.consumer}
		where := ""
		if account != "" {
			labels["account"], where = account, " in account "+account
		}
		switch {
		case r.Kind == KindDeadLetterRate && float64(n) > r.Above:
			out = append(out, observation{Labels: labels, Value: float64(n),
				Summary: fmt.Sprintf("%d dead letters from %s/%s%s in the last %s (above %g)", n, k.stream, k.consumer, where, human.Duration(time.Duration(r.Window)), r.Above)})
		case r.Kind == KindDeadLetterMatch:
			out = append(out, observation{Labels: labels, Value: float64(n),
				Summary: fmt.Sprintf("%d pending dead letters from %s/%s%s match rule %s", n, k.stream, k.consumer, where, r.Name)})
		}
	}
	return out, nil
}

// advisoryKinds are the timeline kinds behind each advisory event.
var advisoryKinds = map[string][]string{
	EventQuorumLost:    {"stream_quorum_lost", "consumer_quorum_lost"},
	EventLeaderElected: {"stream_leader_elected", "consumer_leader_elected"},
	EventOutOfStorage:  {"server_out_of_space"},
	EventDataLoss:      {"data_loss"},
}

// observeAdvisories counts the rule's advisories in its window (for the
// one-off events, the window defaults to 15 minutes: the alert fires on
// the advisory and resolves when it has been quiet that long).
func (e *Evaluator) observeAdvisories(ctx context.Context, r Rule, now time.Time) ([]observation, error) {
	window := time.Duration(r.Window)
	if window == 0 {
		window = 15 * time.Minute
	}
	type key struct{ stream, consumer string }
	counts := map[key]int{}
	var order []key
	for _, kind := range advisoryKinds[r.Event] {
		events, err := e.cfg.Index.Events(ctx, store.EventFilter{Kind: kind, Since: now.Add(-window), Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, ev := range events {
			if !matches(r.Stream, ev.Stream) || !matches(r.Consumer, ev.Consumer) {
				continue
			}
			k := key{ev.Stream, ev.Consumer}
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
	}
	var out []observation
	for _, k := range order {
		if float64(counts[k]) <= r.Above {
			continue
		}
		labels := map[string]string{"event": r.Event}
		where := "the cluster"
		if k.stream != "" {
			labels["stream"], where = k.stream, "stream "+k.stream
		}
		if k.consumer != "" {
			labels["consumer"], where = k.consumer, "consumer "+k.consumer+" on "+k.stream
		}
		out = append(out, observation{Labels: labels, Value: float64(counts[k]),
			Summary: fmt.Sprintf("%d %s advisories for %s in the last %s", counts[k], strings.ReplaceAll(r.Event, "_", " "), where, human.Duration(window))})
	}
	return out, nil
}

// eachAccount hands visit the items (consumers, streams) of each account
// r watches: jetwatch's own (labelled with its name only when r has an
// account pattern), then each other account sampled whose name or id
// matches, read with of.
func eachAccount[T any](e *Evaluator, r Rule, own []T, of func(*store.Account) []T, visit func(account string, items []T)) {
	if r.Account == "" || e.cfg.Accounts == nil {
		visit("", own)
		return
	}
	name, others := e.cfg.Accounts()
	if matches(r.Account, name) {
		visit(cmp.Or(name, "own"), own)
	}
	for i := range others {
		if a := &others[i]; a.Unread == nil && (matches(r.Account, a.Name) || matches(r.Account, a.ID)) {
			visit(a.Name, of(a))
		}
	}
}

// sagaScan bounds the stuck journeys one evaluation reads per rule, the
// oldest first: the same ones each time, so none flaps.
const sagaScan = 500

// DefaultSagaWindow is how far back a saga_stuck rule looks for starts
// when its window is not set.
const DefaultSagaWindow = 24 * time.Hour

// observeSagas lists the journeys keyed by r.Key that saw r.Start and none
// of r.End within r.Within: one instance per key, which holds until an
// end subject arrives (or the start falls out of the window).
func (e *Evaluator) observeSagas(ctx context.Context, r Rule, now time.Time) ([]observation, error) {
	window := cmp.Or(time.Duration(r.Window), DefaultSagaWindow)
	stuck, err := e.cfg.Index.StuckJourneys(ctx, store.StuckJourneyQuery{Name: r.Key, Start: r.Start, End: r.End,
		StartedBefore: now.Add(-time.Duration(r.Within)), StartedAfter: now.Add(-window), Limit: sagaScan})
	if err != nil {
		return nil, err
	}
	out := make([]observation, 0, len(stuck))
	for _, j := range stuck {
		out = append(out, observation{Labels: map[string]string{"journey": j.Key, "key": r.Key},
			Value: now.Sub(j.Started).Seconds(), Since: j.Started,
			Summary: fmt.Sprintf("%s %s started (%s) %s ago and reached none of %s within %s; its last step: %s at %s",
				r.Key, j.Key, r.Start, human.Duration(now.Sub(j.Started)), strings.Join(r.End, ", "),
				human.Duration(time.Duration(r.Within)), j.LastSubject, j.LastAt.Format(time.RFC3339))})
	}
	return out, nil
}
