package web

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/dlq"
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
	// lagCandidates is how many of the largest backlogs are checked for
	// growth.
	lagCandidates = 10
	// pendingCountLimit bounds the pending dead-letter count: past it the
	// badge says "100 000+" rather than count a million rows per page.
	pendingCountLimit = 100_000
	// deadLetterRateWindow and its buckets give the dead-letter rate, per
	// minute over the last hour.
	deadLetterRateWindow  = time.Hour
	deadLetterRateBuckets = 60
)

// fallingBehindWindow is how far back a backlog is followed to call it
// growing: ten samples, at least a minute, at most ten.
func (s *Server) fallingBehindWindow() time.Duration {
	return min(max(10*s.cfg.SampleInterval, time.Minute), 10*time.Minute)
}

// triage gathers what is wrong now: firing alerts, breakers not closed,
// unreadable or unwell streams and consumers, stalled consumers, growing
// backlogs, and the pending dead letters with their rate. lagging are the
// largest backlogs, already read by the caller. jetwatch's own streams
// and consumers count only with own.
func (s *Server) triage(ctx context.Context, now time.Time, own bool, lagging []store.Consumer) (views.Triage, error) {
	t := views.Triage{FallingBehindWindow: s.fallingBehindWindow()}
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
				problems = append(problems, alertProblem(rs.Rule, in, now))
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
			problems = append(problems, breakerProblem(b, now))
		}
	}
	unwell, err := s.cfg.Index.Unwell(ctx, triageFetched, own)
	if err != nil {
		return t, err
	}
	for _, st := range unwell.Streams {
		if p, ok := streamProblem(st); ok {
			problems = append(problems, p)
		}
	}
	for _, c := range unwell.Consumers {
		problems = append(problems, consumerProblem(c, now))
	}
	behind, err := s.fallingBehind(ctx, now, lagging)
	if err != nil {
		return t, err
	}
	problems = append(problems, behind...)
	t.DeadLetters, err = s.deadLetterSummary(ctx, now)
	if err != nil {
		return t, err
	}
	slices.SortStableFunc(problems, func(a, b views.Problem) int {
		return cmp.Or(cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)),
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

// severityRank orders problem severities, worst highest.
func severityRank(s string) int {
	switch s {
	case store.HealthCritical:
		return 2
	case store.HealthWarning:
		return 1
	}
	return 0
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
		// The collector words consumer reasons "consumer <name> ...".
		if !strings.HasPrefix(r, "consumer ") {
			own = append(own, r)
		}
	}
	if len(own) == 0 {
		return p, false
	}
	p.Text = strings.Join(own, "; ")
	return p, true
}

func consumerProblem(c store.Consumer, now time.Time) views.Problem {
	p := views.Problem{Kind: views.ProblemConsumer, Severity: c.Health.Level, Subject: c.Stream + " / " + c.Name,
		Link: views.ConsumerURL(c.Stream, c.Name), Text: strings.Join(c.Health.Reasons, "; ")}
	switch {
	case c.Unread != nil:
		p.Kind, p.Severity = views.ProblemUnread, store.HealthCritical
		p.Text = "could not be read (" + c.Unread.Why + "): " + c.Unread.Detail + "; " + readAtText(c.Unread.ReadAt)
	case c.Health.Level == store.HealthCritical:
	case c.Stalled:
		p.Kind = views.ProblemStalled
		p.Text = views.Count(c.NumPending) + " pending and nothing delivered"
		if c.StalledSince != nil {
			p.Since = *c.StalledSince
			p.Text += " for " + views.Duration(now.Sub(*c.StalledSince))
		}
	}
	return p
}

func readAtText(at *time.Time) string {
	if at == nil {
		return "never read"
	}
	return "the numbers shown are from " + views.Absolute(*at)
}

// fallingBehind judges the largest backlogs: a consumer falls behind when
// its pending count grew over the window, sample after sample, while it
// still delivers (one that delivers nothing is stalled, listed as such).
//
// This is the seam for the lag evaluator: when consumers carry their own
// Burrow-style lag state (falling behind, stalled, stopped, draining),
// the problems come from that state and this judgement goes.
func (s *Server) fallingBehind(ctx context.Context, now time.Time, lagging []store.Consumer) ([]views.Problem, error) {
	window := s.fallingBehindWindow()
	var out []views.Problem
	for _, c := range lagging[:min(len(lagging), lagCandidates)] {
		if c.Stalled || c.Unread != nil || c.Paused {
			continue
		}
		hist, err := s.cfg.Index.ConsumerHistory(ctx, c.Stream, c.Name, now.Add(-window), now, 10)
		if err != nil {
			return nil, err
		}
		if len(hist) < 3 {
			continue
		}
		growing := true
		for i := 1; i < len(hist) && growing; i++ {
			growing = hist[i].NumPending >= hist[i-1].NumPending
		}
		first, last := hist[0], hist[len(hist)-1]
		if !growing || last.NumPending <= first.NumPending {
			continue
		}
		span := last.At.Sub(first.At)
		grew := last.NumPending - first.NumPending
		text := fmt.Sprintf("%s pending, up %s in %s (%s); delivering %s", views.Count(c.NumPending), views.Count(grew),
			views.Duration(span), views.Rate(float64(grew)/max(span.Seconds(), 1)), views.Rate(c.DeliveredPerSec))
		out = append(out, views.Problem{Kind: views.ProblemFallingBehind, Severity: store.HealthWarning,
			Subject: c.Stream + " / " + c.Name, Text: text, Link: views.ConsumerURL(c.Stream, c.Name), Since: first.At})
	}
	return out, nil
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
	d.Pending, d.PendingMore, err = s.cfg.DeadLetters.CountUpTo(ctx, dlq.Filter{Status: dlq.StatusPending}, pendingCountLimit)
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

// navBadges are the navigation's counts for a page other than the
// overview (which has them from its own triage). They are a convenience:
// a failure to read them is logged and shows no badges.
func (s *Server) navBadges(ctx context.Context, now time.Time) *views.NavBadges {
	lagging, err := s.cfg.Index.TopLagging(ctx, lagCandidates, false)
	if err == nil {
		var t views.Triage
		if t, err = s.triage(ctx, now, false, lagging); err == nil {
			return t.Badges()
		}
	}
	if ctx.Err() == nil {
		s.logger.WarnContext(ctx, "navigation counts could not be read", "err", err)
	}
	return nil
}
