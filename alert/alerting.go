package alert

import "context"

// Alerting is what the dashboard reads and does: rule states, silences,
// acknowledgements and the delivery log.
type Alerting struct {
	*Evaluator
	Log *DeliveryLog
}

// Deliveries returns the latest deliveries, newest first.
func (d Alerting) Deliveries(ctx context.Context, limit int) ([]Delivery, error) {
	return d.Log.Recent(ctx, limit)
}
