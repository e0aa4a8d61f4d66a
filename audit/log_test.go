package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

func TestAuditLogSurvivesLosingTheIndex(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	open := func() (*Log, *store.DB) {
		db, err := store.Open(ctx, filepath.Join(t.TempDir(), "data"))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		l, err := Open(ctx, nc, db, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err)
		l.Start(ctx)
		t.Cleanup(l.Stop)
		return l, db
	}
	l, _ := open()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i, a := range []string{"login", "redeliver", "payload.view", "discard"} {
		require.NoError(t, l.Record(ctx, Entry{Time: at.Add(time.Duration(i) * time.Second), Actor: "otto", Method: "password",
			Action: a, Target: fmt.Sprintf("dead-letter %d", i), Result: "ok", Addr: "192.0.2.1"}))
	}
	// Something else on the audit subjects is kept as unreadable, not dropped.
	require.NoError(t, nc.Publish(SubjectPrefix+"garbage", []byte("\xff not json")))
	require.NoError(t, nc.Flush())

	wait := func(l *Log) []Entry {
		var got []Entry
		natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			var err error
			got, err = l.List(ctx, store.AuditFilter{}, 100)
			if err != nil {
				return err
			}
			if len(got) != 5 {
				return fmt.Errorf("%d of 5 indexed", len(got))
			}
			return nil
		})
		return got
	}
	first := wait(l)
	require.Equal(t, "unreadable", first[0].Action)
	require.True(t, first[0].Failed)
	require.Equal(t, "discard", first[1].Action)
	require.Equal(t, at.Add(3*time.Second), first[1].Time)

	// A new, empty index (a lost disk, another replica) reads the same log.
	l2, _ := open()
	require.Equal(t, first, wait(l2))

	byAction, err := l2.List(ctx, store.AuditFilter{Action: "redeliver"}, 10)
	require.NoError(t, err)
	require.Len(t, byAction, 1)
	older, err := l2.List(ctx, store.AuditFilter{Before: first[2].ID}, 10)
	require.NoError(t, err)
	require.Len(t, older, 2)
}
