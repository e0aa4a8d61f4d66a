package web

import (
	"context"
	"slices"
	"time"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// breakerSpanTransitions bounds the transitions read per breaker to draw
// its spans: a flapping breaker has many, and a chart shows a few hours.
const breakerSpanTransitions = 500

// breakerSpans are the periods the given breakers were open or half-open
// since since, from their transitions, for marking on a consumer's
// charts. A breaker still open has a span without an end.
func (s *Server) breakerSpans(ctx context.Context, breakers []store.Breaker, since time.Time) ([]views.TimeSpan, error) {
	var spans []views.TimeSpan
	for _, b := range breakers {
		ts, err := s.cfg.Index.BreakerTransitions(ctx, b.Service, b.Breaker, breakerSpanTransitions)
		if err != nil {
			return nil, err
		}
		slices.Reverse(ts) // oldest first
		for i, t := range ts {
			if t.To != store.BreakerOpen && t.To != store.BreakerHalfOpen {
				continue
			}
			var end time.Time
			if i+1 < len(ts) {
				end = ts[i+1].At
			}
			if !end.IsZero() && end.Before(since) {
				continue
			}
			spans = append(spans, views.TimeSpan{From: t.At, To: end, Class: t.To,
				Label: "breaker " + b.Service + " / " + b.Breaker + " " + t.To})
		}
	}
	return spans, nil
}
