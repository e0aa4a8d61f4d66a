package web

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

const (
	// triageShown is how many problems the overview lists; the rest are
	// counted ("and 40 more").
	triageShown = 20
	// triageFetched is how many unwell streams and consumers are read
	// to choose them from.
	triageFetched = 50
	// pendingCountLimit bounds the pending dead-letter count: past it the
	// badge says "100 000+" rather than count a million rows per page.
	pendingCountLimit = 100_000
	// deadLetterRateWindow and its buckets give the dead-letter rate, per
	// minute over the last hour.
	deadLetterRateWindow  = time.Hour
	deadLetterRateBuckets = 60
)

// triage gathers what is wrong now: firing alerts, breakers not closed,
// unreadable or unwell streams and consumers (stalled, stopped or falling
// behind as the sampler judged their lag), and the pending dead letters
// with their rate. jetwatch's own streams and consumers count only with
// own. Problems of jetwatch's own account (alerts and breakers among
// them) are listed with includeOwn, those of the other accounts given
// after them; the tiles count alerts, breakers and dead letters always.
func (s *Server) triage(ctx context.Context, now time.Time, own, includeOwn bool, others []store.Account) (views.Triage, error) {
	var t views.Triage
	var problems []views.Problem
	if s.cfg.Alerts != nil {
		t.Alerts = true
		statuses, _ := s.cfg.Alerts.Statuses()
		for _, rs := range statuses {
			for _, in := range rs.Instances {
				if in.State != alert.StateFiring {
					continue
				}
				t.Firing++
				if includeOwn {
					problems = append(problems, alertProblem(rs.Rule, in, now))
				}
			}
		}
	}
	breakers, err := s.cfg.Index.Breakers(ctx, now)
	if err != nil {
		return t, err
	}
	for _, b := range breakers {
		if b.State != store.BreakerClosed {
			t.OpenBreakers++
			if includeOwn {
				problems = append(problems, breakerProblem(b, now))
			}
		}
	}
	var unwell store.Unwell
	if includeOwn {
		if unwell, err = s.cfg.Index.Unwell(ctx, triageFetched, own); err != nil {
			return t, err
		}
	}
	for _, st := range unwell.Streams {
		if p, ok := streamProblem(st); ok {
			problems = append(problems, p)
		}
	}
	for _, c := range unwell.Consumers {
		problems = append(problems, consumerProblem(c))
	}
	problems = append(problems, accountProblems(others)...)
	t.DeadLetters, err = s.deadLetterSummary(ctx, now)
	if err != nil {
		return t, err
	}
	elsewhere := s.accountDeadLetters(ctx)
	for _, p := range elsewhere {
		t.DeadLetters.Elsewhere += p.pending
		t.DeadLetters.ElsewhereMore = t.DeadLetters.ElsewhereMore || p.more
		if includeOwn {
			problems = append(problems, p.Problem)
		}
	}
	slices.SortStableFunc(problems, func(a, b views.Problem) int {
		return cmp.Or(cmp.Compare(store.HealthRank(b.Severity), store.HealthRank(a.Severity)),
			cmp.Compare(views.ProblemRank(a.Kind), views.ProblemRank(b.Kind)))
	})
	// Unwell streams and consumers beyond those read are counted too.
	t.More = unwell.StreamTotal - len(unwell.Streams) + unwell.ConsumerTotal - len(unwell.Consumers)
	if len(problems) > triageShown {
		t.More += len(problems) - triageShown
		problems = problems[:triageShown]
	}
	t.Problems = problems
	return t, nil
}

func alertProblem(r alert.Rule, in alert.Instance, now time.Time) views.Problem {
	text := cmp.Or(in.Summary, views.RuleCondition(r))
	if in.Silence != nil && now.Before(in.Silence.Until) {
		text += "; silenced by " + in.Silence.By + " for " + views.Duration(in.Silence.Until.Sub(now))
	}
	if in.AckedBy != "" {
		text += "; acknowledged by " + in.AckedBy
	}
	return views.Problem{Kind: views.ProblemAlert, Severity: r.Severity, Subject: r.Name, Text: text,
		Link: "/alerts", Since: in.Since}
}

func breakerProblem(b store.Breaker, now time.Time) views.Problem {
	p := views.Problem{Kind: views.ProblemBreaker, Severity: store.HealthCritical, Subject: b.Service + " / " + b.Breaker,
		Link: "/breakers", Since: b.Since}
	text := b.State + ": its service is not calling what it guards"
	if b.State == store.BreakerHalfOpen {
		p.Severity = store.HealthWarning
		text = "half-open: its service is trying a few calls"
	}
	if b.Stream != "" {
		text += "; it guards " + b.Stream + " / " + b.Consumer
		p.Link = views.ConsumerURL(b.Stream, b.Consumer)
	}
	if b.LastError != "" {
		text += "; last error: " + views.Shorten(b.LastError, 120)
	}
	if b.Stale {
		text += "; no report for " + views.Duration(now.Sub(b.UpdatedAt)) + ", so its service may be gone"
	}
	p.Text = text
	return p
}

// streamProblem is a stream's own trouble. Reasons about its consumers
// are left to the consumers' own problems, so each shows once; a stream
// unwell only through them is no problem of its own.
func streamProblem(st store.Stream) (views.Problem, bool) {
	p := views.Problem{Kind: views.ProblemStream, Severity: st.Health.Level, Subject: st.Name, Link: views.StreamURL(st.Name)}
	if st.Unread != nil {
		p.Kind, p.Severity = views.ProblemUnread, store.HealthCritical
		p.Text = "could not be read (" + st.Unread.Why + "): " + st.Unread.Detail + "; " + readAtText(st.Unread.ReadAt)
		return p, true
	}
	var own []string
	for _, r := range st.Health.Reasons {
		if !store.IsConsumerReason(r) {
			own = append(own, r)
		}
	}
	if len(own) == 0 {
		return p, false
	}
	p.Text = strings.Join(own, "; ")
	return p, true
}

// consumerProblem is a consumer's trouble, named by its lag state when
// that is what is wrong; its reasons say why (arrival and ack rates for
// one falling behind).
func consumerProblem(c store.Consumer) views.Problem {
	p := views.Problem{Kind: views.ProblemConsumer, Severity: c.Health.Level, Subject: c.Stream + " / " + c.Name,
		Link: views.ConsumerURL(c.Stream, c.Name), Text: strings.Join(c.Health.Reasons, "; ")}
	switch {
	case c.Unread != nil:
		p.Kind, p.Severity = views.ProblemUnread, store.HealthCritical
		p.Text = "could not be read (" + c.Unread.Why + "): " + c.Unread.Detail + "; " + readAtText(c.Unread.ReadAt)
	case c.LagState == store.LagPaused || c.Paused:
		p.Kind = views.ProblemPaused
	case c.LagState == store.LagStopped:
		p.Kind = views.ProblemStopped
	case c.LagState == store.LagStalled || c.Stalled:
		// A row sampled before lag was judged has only its stalled flag.
		p.Kind = views.ProblemStalled
	case c.LagState == store.LagFallingBehind:
		p.Kind = views.ProblemFallingBehind
	}
	if c.StalledSince != nil && (p.Kind == views.ProblemStalled || p.Kind == views.ProblemStopped) {
		p.Since = *c.StalledSince
	}
	return p
}

func readAtText(at *time.Time) string {
	if at == nil {
		return "never read"
	}
	return "the numbers shown are from " + views.Absolute(*at)
}

// deadLetterSummary counts the dead letters waiting for an operator and
// those that arrived in each minute of the last hour.
func (s *Server) deadLetterSummary(ctx context.Context, now time.Time) (views.DeadLetterSummary, error) {
	var d views.DeadLetterSummary
	if s.cfg.DeadLetters == nil {
		return d, nil
	}
	d.Available = true
	var err error
	d.Pending, d.PendingMore, err = s.cfg.DeadLetters.CountUpTo(ctx, store.DeadLetterFilter{Status: store.StatusPending}, pendingCountLimit)
	if err != nil {
		return d, err
	}
	d.PerMinute, err = s.cfg.Index.DeadLetterArrivals(ctx, now.Add(-deadLetterRateWindow), now, deadLetterRateBuckets)
	if err != nil {
		return d, err
	}
	for _, n := range d.PerMinute {
		d.LastHour += n
	}
	return d, nil
}

// accountPending is a problem of the triage: dead letters pending in
// another account jetwatch captures (--account), with their count.
type accountPending struct {
	views.Problem
	pending int
	more    bool
}

// accountDeadLetters counts the pending dead letters of each other
// account jetwatch captures, from that account's own index partition
// (local, so an account whose NATS is down still counts what it has). A
// partition that cannot be read is logged and left out: the main
// account's triage must not fail for it.
func (s *Server) accountDeadLetters(ctx context.Context) []accountPending {
	var out []accountPending
	for _, a := range s.cfg.DeadLetterAccounts {
		n, more, err := a.DeadLetters.CountUpTo(ctx, store.DeadLetterFilter{Status: store.StatusPending}, pendingCountLimit)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.WarnContext(ctx, "an account's pending dead letters could not be counted", "account", a.Name, "err", err)
			}
			continue
		}
		if n == 0 {
			continue
		}
		count := views.Count(n)
		if more {
			count += "+"
		}
		out = append(out, accountPending{pending: n, more: more, Problem: views.Problem{Kind: views.ProblemDeadLetters,
			Severity: store.HealthWarning, Subject: "account " + a.Name, Text: count + " dead letters wait for an operator",
			Link: views.AccountURL(views.PendingDeadLettersURL, a.Name)}})
	}
	return out
}

// navBadges are the navigation's counts for a page other than the
// overview (which has them from its own triage). They are a convenience:
// a failure to read them is logged and shows no badges.
func (s *Server) navBadges(ctx context.Context, now time.Time) *views.NavBadges {
	st := s.cfg.SamplerState()
	var others []store.Account
	if st.AllAccounts {
		others = st.Accounts
	}
	t, err := s.triage(ctx, now, false, true, others)
	if err == nil {
		return t.Badges()
	}
	if ctx.Err() == nil {
		s.logger.WarnContext(ctx, "navigation counts could not be read", "err", err)
	}
	return nil
}
