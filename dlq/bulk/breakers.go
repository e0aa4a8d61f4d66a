package bulk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/store"
)

// holdForBreakers holds a redelivery before a chunk while a breaker guards
// a consumer the chunk goes back to, saving why (and renewing the lease)
// every BreakerPoll, until the breaker closes, goes stale, or an operator
// says to ignore breakers. Nothing of the chunk is sent meanwhile, so
// holding changes nothing of what is sent, only when. stop is true when
// the job was paused or cancelled, or the runner is stopping.
func (p *pass) holdForBreakers(ctx context.Context, items []store.DeadLetter) (stop bool, err error) {
	if p.job.Action != dlq.ActionRedeliver || p.b.cfg.Breakers == nil {
		return false, nil
	}
	fresh := false
	for {
		reason := ""
		if !p.ignoreBreakers {
			reason = p.guarded(ctx, items, fresh)
		}
		if reason == "" && p.waiting == "" {
			return false, nil
		}
		if reason != p.waiting {
			if reason != "" {
				p.b.logger.Info("bulk job holds", "job", p.job.ID, "why", reason)
			} else {
				p.b.logger.Info("bulk job goes on", "job", p.job.ID, "held", p.b.cfg.Now().Sub(p.waitingSince).Round(time.Second))
			}
			if p.waiting == "" {
				p.waitingSince = p.b.cfg.Now().UTC()
			}
			p.waiting = reason
			if reason == "" {
				p.waitingSince = time.Time{}
			}
		}
		// Saved while holding, too: it renews the lease and reads an
		// operator's override.
		if err := p.save(ctx, ""); err != nil {
			if errors.Is(err, context.Canceled) {
				return true, nil
			}
			return true, err
		}
		p.lastSave = p.b.cfg.Now()
		if p.waiting == "" {
			return false, nil
		}
		t := time.NewTimer(p.b.cfg.BreakerPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return true, nil
		case <-t.C:
		}
		fresh = true
	}
}

// guarded says why the chunk must wait, "" when no breaker guards its
// consumers. The breakers are read at most every BreakerPoll (fresh
// forces a read); a failure to read them holds the job, saying so, rather
// than redelivering into an outage it cannot see.
func (p *pass) guarded(ctx context.Context, items []store.DeadLetter, fresh bool) string {
	now := p.b.cfg.Now()
	if fresh || p.breakersAt.IsZero() || now.Sub(p.breakersAt) >= p.b.cfg.BreakerPoll {
		bs, err := p.b.cfg.Breakers.Breakers(ctx, now)
		if err != nil {
			if ctx.Err() != nil {
				return p.waiting
			}
			p.b.logger.Error("bulk job cannot read the breakers; it holds", "job", p.job.ID, "err", err)
			return "waiting: the breakers could not be read (see the jetwatch log)"
		}
		p.breakers, p.breakersAt = bs, now
	}
	return breakerHold(p.breakers, items)
}

// breakerHold names the first breaker, open or half open and not stale,
// that guards a consumer of items, as the reason to wait; "" when none.
func breakerHold(breakers []store.Breaker, items []store.DeadLetter) string {
	var down []store.Breaker
	for _, b := range breakers {
		if (b.State == store.BreakerOpen || b.State == store.BreakerHalfOpen) && !b.Stale && b.Consumer != "" {
			down = append(down, b)
		}
	}
	if len(down) == 0 {
		return ""
	}
	for _, d := range items {
		i := slices.IndexFunc(down, func(b store.Breaker) bool { return b.Stream == d.Stream && b.Consumer == d.Consumer })
		if i < 0 {
			continue
		}
		b := down[i]
		var more []string
		for _, o := range down[i+1:] {
			if o.Stream == d.Stream && o.Consumer == d.Consumer {
				more = append(more, o.Breaker)
			}
		}
		why := fmt.Sprintf("waiting: breaker %s/%s %s (service %s, guarding consumer %s on %s)", b.Consumer, b.Breaker, b.State, b.Service, b.Consumer, b.Stream)
		if len(more) > 0 {
			why += "; also " + strings.Join(more, ", ")
		}
		return why
	}
	return ""
}
