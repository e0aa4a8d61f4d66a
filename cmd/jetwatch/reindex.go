package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/internal/natsconn"
	"github.com/jetwatch/jetwatch/store"
)

// runReindex forgets the dead-letter index and rebuilds it from the DLQ
// stream, which is the system of record. The advisory timeline is also
// forgotten and rebuilt by the next serve from the advisory stream.
func runReindex(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	db, err := store.Open(ctx, cfg.Data)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetLogger(logger)
	nc, err := natsconn.Connect(ctx, cfg.NATS, logger, nil)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for !nc.IsConnected() {
		select {
		case <-cctx.Done():
			return fmt.Errorf("nats: not connected to %s after 15s: %s", natsconn.RedactURL(cfg.NATS.Servers), nc.LastError())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cs, err := cfg.correlations()
	if err != nil {
		return err
	}
	searchText, searchMasks, err := searchMasking(cfg)
	if err != nil {
		return err
	}
	ix, err := index.New(nc, db, index.Config{Stream: cfg.DLQStream, Keys: cs.KeyValues, SearchText: searchText,
		SearchMasks: searchMasks, Logger: logger})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := ix.Reset(ctx); err != nil {
		return err
	}
	if err := collector.ResetTimeline(ctx, db); err != nil {
		return err
	}
	if err := ix.CatchUp(ctx); err != nil {
		return err
	}
	n, err := db.CountDeadLetters(ctx, store.DeadLetterFilter{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindexed %d dead letters from stream %s in %s; the advisory timeline rebuilds on the next serve\n",
		n, cfg.DLQStream, time.Since(start).Round(time.Millisecond))
	// Each --account's partition rebuilds itself from that account's DLQ
	// stream when its file is missing; reindex does not reach them.
	for _, a := range cfg.Accounts {
		fmt.Fprintf(stdout, "account %s: not reindexed; to rebuild its index, stop jetwatch, delete %s and start it again\n",
			a.Name, accountPartition(cfg.Data, a.Name))
	}
	return nil
}
