package web

import (
	"time"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// staleAfterIntervals is how many sample intervals may pass without a new
// sample before data is shown as stale: one missed cycle is normal jitter.
const staleAfterIntervals = 3

// stale says whether data sampled at t is too old to trust.
func (s *Server) stale(t, now time.Time) bool {
	return now.Sub(t) > staleAfterIntervals*s.cfg.SampleInterval
}

// consumerRows judges staleness and attaches sparklines (when given) to
// consumers as listed.
func (s *Server) consumerRows(cs []store.Consumer, sparks map[string][]uint64, now time.Time) []views.ConsumerRow {
	rows := make([]views.ConsumerRow, len(cs))
	for i := range cs {
		rows[i] = views.ConsumerRow{Consumer: cs[i], Stale: s.stale(cs[i].SampledAt, now)}
		if sparks != nil {
			rows[i].Spark = views.NewSparkline(sparks[cs[i].Name])
		}
	}
	return rows
}
