package startstop

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// part is a service that fails its first fails starts, and notes what
// happened to it in a shared journal.
type part struct {
	name    string
	fails   int
	err     func(try int) error
	journal *journal
	tries   int
}

type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

func (p *part) Start(context.Context) error {
	p.journal.mu.Lock()
	p.tries++
	try := p.tries
	p.journal.mu.Unlock()
	if try <= p.fails {
		if p.err != nil {
			return p.err(try)
		}
		return errors.New(p.name + " needs its stream")
	}
	p.journal.add("start " + p.name)
	return nil
}

func (p *part) Stop() { p.journal.add("stop " + p.name) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newGroup(log *syncBuffer) *Group {
	g := New(slog.New(slog.NewTextHandler(log, nil)))
	g.FirstRetry, g.MaxRetry = time.Millisecond, 4*time.Millisecond
	return g
}

func waitReady(t *testing.T, ready chan struct{}) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the group never had every service running")
	}
}

func TestStagesStartInOrderRetryAndStopInReverse(t *testing.T) {
	t.Parallel()
	j := &journal{}
	var log syncBuffer
	g := newGroup(&log)
	g.Add("capture", &part{name: "capture", fails: 5, journal: j})
	g.Then()
	g.Add("index", &part{name: "index", journal: j})
	g.Then()
	g.Add("bulk", &part{name: "bulk", fails: 2, journal: j})

	ready := make(chan struct{})
	g.Start(t.Context(), func() { close(ready) })
	waitReady(t, ready)
	require.Equal(t, []string{"start capture", "start index", "start bulk"}, j.all(),
		"a later stage starts only once the earlier one runs")
	require.Equal(t, []string{"capture", "index", "bulk"}, g.Running())

	// The same failure five times is one line; the eventual start is one more.
	out := log.String()
	require.Equal(t, 1, strings.Count(out, "capture is not running yet"), out)
	require.Contains(t, out, "capture running")
	require.Contains(t, out, "tries=6")

	g.Stop()
	require.Equal(t, []string{"start capture", "start index", "start bulk", "stop bulk", "stop index", "stop capture"}, j.all())
	g.Stop() // twice is harmless
	require.Len(t, j.all(), 6)
}

func TestEachDistinctFailureIsLoggedOnce(t *testing.T) {
	t.Parallel()
	j := &journal{}
	var log syncBuffer
	g := newGroup(&log)
	g.Add("audit log", &part{name: "audit", fails: 6, journal: j, err: func(try int) error {
		if try <= 3 {
			return errors.New("nats: no responders")
		}
		return errors.New("permission denied on $JS.API.STREAM.CREATE.JETWATCH_AUDIT")
	}})
	ready := make(chan struct{})
	g.Start(t.Context(), func() { close(ready) })
	waitReady(t, ready)
	g.Stop()
	out := log.String()
	require.Equal(t, 2, strings.Count(out, "audit log is not running yet"), out)
	require.Contains(t, out, "no responders")
	require.Contains(t, out, "permission denied")
}

func TestStopEndsRetriesAndStopsOnlyWhatStarted(t *testing.T) {
	t.Parallel()
	j := &journal{}
	var log syncBuffer
	g := newGroup(&log)
	never := &part{name: "bridge", fails: 1 << 30, journal: j}
	g.Add("relay", &part{name: "relay", journal: j})
	g.Add("bridge", never)
	g.Then()
	g.Add("index", &part{name: "index", journal: j})
	g.Start(t.Context(), nil)
	deadline := time.Now().Add(10 * time.Second)
	for never.triesSoFar(j) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { g.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for a service that never starts")
	}
	require.Equal(t, []string{"start relay", "stop relay"}, j.all(), "the index never started: its stage never came")
}

// triesSoFar reads p.tries under the journal's lock (Start runs on the
// group's goroutine).
func (p *part) triesSoFar(j *journal) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return p.tries
}

func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	g := newGroup(&log)
	g.Add("relay", &part{name: "relay", journal: &journal{}})
	g.Stop()
	require.Empty(t, g.Running())
}
