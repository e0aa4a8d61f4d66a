package web

import "github.com/jetwatch/jetwatch/store"

// historyPoint is a consumer history point with the rates derived from the
// sequence deltas to the previous point. The first point has no
// predecessor, so its rates are 0.
type historyPoint struct {
	store.ConsumerPoint
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	AckedPerSec     float64 `json:"acked_per_sec"`
}

// withRates derives delivered/s and acked/s; never nil, so a requested
// history with no samples marshals as [].
func withRates(hist []store.ConsumerPoint) []historyPoint {
	out := make([]historyPoint, len(hist))
	for i, h := range hist {
		out[i].ConsumerPoint = h
		if i == 0 {
			continue
		}
		prev := hist[i-1]
		dt := h.At.Sub(prev.At).Seconds()
		if dt <= 0 {
			continue
		}
		// A sequence going backwards means the consumer was recreated; no
		// rate can be derived across that.
		if h.DeliveredSeq >= prev.DeliveredSeq {
			out[i].DeliveredPerSec = float64(h.DeliveredSeq-prev.DeliveredSeq) / dt
		}
		if h.AckFloorSeq >= prev.AckFloorSeq {
			out[i].AckedPerSec = float64(h.AckFloorSeq-prev.AckFloorSeq) / dt
		}
	}
	return out
}
