package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartTeam gives the demo's second account, LEDGER, something to show on
// jetwatch's accounts page: a stream taking an entry a second, a consumer
// keeping up with it, and one whose service is down (nothing fetches from
// it), which shows stopped. nc is a LEDGER user's
// connection; the workload runs until ctx ends.
func StartTeam(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("demo ledger: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "ENTRIES", Subjects: []string{"ledger.entries.>"}, MaxMsgs: 100_000, Discard: jetstream.DiscardNew,
	}); err != nil {
		return fmt.Errorf("demo ledger stream: %w", err)
	}
	posting, err := js.CreateOrUpdateConsumer(ctx, "ENTRIES", jetstream.ConsumerConfig{
		Durable: "posting", Description: "posts entries to the general ledger", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return fmt.Errorf("demo ledger consumer: %w", err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "ENTRIES", jetstream.ConsumerConfig{
		Durable: "reconcile", Description: "nightly reconciliation; its service is down", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Hour,
	}); err != nil {
		return fmt.Errorf("demo ledger consumer: %w", err)
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(pctx, fmt.Sprintf("ledger.entries.%d", i%7), fmt.Appendf(nil, `{"entry":%d,"amount_cents":%d}`, i, 100+i%900))
			cancel()
			if err != nil && ctx.Err() == nil {
				continue // the demo carries on; jetwatch shows what NATS says
			}
			if b, err := posting.FetchNoWait(10); err == nil {
				for m := range b.Messages() {
					_ = m.Ack()
				}
			}
		}
	}()
	return nil
}
