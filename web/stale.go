package web

import "time"

// stale says whether data sampled at t is too old to trust: more than
// three intervals without a new sample.
func (s *Server) stale(t, now time.Time) bool {
	return now.Sub(t) > 3*s.cfg.SampleInterval
}
