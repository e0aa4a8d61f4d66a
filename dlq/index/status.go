package index

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jetwatch/jetwatch/internal/human"
	"github.com/jetwatch/jetwatch/store"
)

// lagTimeout bounds one read of the DLQ stream's last sequence.
const lagTimeout = 2 * time.Second

// recentUnindexable is how many unindexable dead letters Status lists.
const recentUnindexable = 10

// Status says how far the index is behind the DLQ stream, and which
// dead letters it could not store.
type Status struct {
	// Indexed is the last DLQ sequence indexed (stored, or recorded as
	// unindexable).
	Indexed uint64 `json:"indexed_seq"`
	// LastSeq is the DLQ stream's last sequence, as last read.
	LastSeq uint64 `json:"dlq_last_seq"`
	// Lag is how many DLQ messages are not indexed yet: LastSeq minus
	// Indexed (or, when the stream went back below the index, the
	// messages it holds).
	Lag uint64 `json:"lag"`
	// Stalled says the index is behind and has stored nothing for
	// Config.StallAfter (or at all, when the stream went back).
	Stalled bool `json:"stalled"`
	// ProgressAt is when the index last moved or was last caught up.
	ProgressAt time.Time `json:"progress_at,omitzero"`
	// Why says, in the operator's words, why a stalled index is not
	// moving.
	Why string `json:"why,omitempty"`
	// Unindexable counts the dead letters the index could not store and
	// moved past; Recent lists the newest of them.
	Unindexable int                           `json:"unindexable"`
	Recent      []store.UnindexableDeadLetter `json:"recent_unindexable"`

	// known says the DLQ stream's last sequence has been read at least
	// once, so Lag means something.
	known bool
}

// progress is what the index knows of how far behind it is.
type progress struct {
	mu      sync.Mutex
	running bool
	// last and msgs are the DLQ stream's last sequence and message count
	// as last read (known once read), askedAt when it was last asked.
	last, msgs uint64
	known      bool
	askedAt    time.Time
	// wentBack says the last read found the stream below the index.
	wentBack bool
	// pos is the position as last seen, movedAt when it last moved or
	// the index was last caught up.
	pos     uint64
	posSeen bool
	movedAt time.Time
	// stores counts the batches stored, so that a position read from the
	// index while one was being stored is not taken over the newer one.
	stores uint64
	// failure is the follow loop's last failure in the operator's words,
	// "" once a batch is stored.
	failure string
	// stalled is the stall last logged, so each is logged once.
	stalled bool
}

// setRunning notes the index starting or stopping. A start gives the
// index StallAfter to move before it counts as stalled.
func (p *progress) setRunning(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = on
	if on {
		p.movedAt = time.Now()
	}
}

func (p *progress) failed(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failure = why
}

// stored notes a batch stored (possibly empty) and the position after it.
func (p *progress) stored(pos uint64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failure = ""
	p.stores++
	p.seePosition(pos, now)
}

// seePosition notes the position; p.mu is held.
func (p *progress) seePosition(pos uint64, now time.Time) {
	if !p.posSeen || pos != p.pos || (p.known && pos >= p.last) {
		p.movedAt = now
	}
	p.pos, p.posSeen = pos, true
}

// observe works out the lag and whether the index stalled, reading the
// position from the database (when force says so or none is known yet)
// and the DLQ stream's last sequence from NATS when force says so or
// nobody else does: while the index runs, its
// watcher reads it every LagEvery, so pages and scrapes never wait on NATS.
func (ix *Index) observe(ctx context.Context, force bool) Status {
	p := &ix.progress
	now := time.Now()
	p.mu.Lock()
	ask := force || !p.known || (!p.running && now.Sub(p.askedAt) >= ix.cfg.LagEvery)
	if ask {
		p.askedAt = now
	}
	// The index notes each position it stores, so once one is known only
	// the watcher reads it again (to see another process's writes, as a
	// reindex's): a scrape of /metrics never queries SQLite.
	readPos := force || !p.posSeen
	pos, stores := p.pos, p.stores
	p.mu.Unlock()
	// The position first: read after the stream's last sequence, it could
	// pass a message published in between and look like a stream that went
	// back.
	var posErr error
	if readPos {
		pos, posErr = ix.Position(ctx)
		p.mu.Lock()
		if posErr == nil && p.stores != stores {
			// A batch stored meanwhile noted a newer position than the
			// one read: keep it.
			pos = p.pos
		} else if posErr == nil {
			p.seePosition(pos, now)
		}
		p.mu.Unlock()
	}
	if ask {
		rctx, cancel := context.WithTimeout(ctx, lagTimeout)
		s, err := ix.js.Stream(rctx, ix.cfg.Stream)
		cancel()
		if err == nil {
			st := s.CachedInfo().State
			p.mu.Lock()
			p.last, p.msgs, p.known = st.LastSeq, st.Msgs, true
			p.wentBack = posErr == nil && st.LastSeq < pos
			if posErr == nil && p.stores == stores {
				p.seePosition(pos, now)
			}
			p.mu.Unlock()
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Indexed: p.pos, LastSeq: p.last, ProgressAt: p.movedAt, known: p.known}
	if p.known && p.last > p.pos {
		st.Lag = p.last - p.pos
	}
	switch {
	case p.known && p.wentBack:
		st.Lag, st.Stalled = p.msgs, true
		st.Why = fmt.Sprintf("the DLQ stream's last sequence (%d) is below the last one indexed (%d): was the stream recreated? `jetwatch reindex` rebuilds the index",
			p.last, p.pos)
	case st.Lag > 0 && now.Sub(p.movedAt) >= ix.cfg.StallAfter:
		st.Stalled = true
		switch {
		case p.failure != "":
			st.Why = p.failure
		case !p.running:
			st.Why = "indexing is not running"
		default:
			st.Why = fmt.Sprintf("nothing indexed for %s while the DLQ stream holds more (see the jetwatch logs)", human.Duration(now.Sub(p.movedAt)))
		}
	}
	return st
}

// watch reads the lag every LagEvery until ctx ends, and logs a stall
// once when it begins and once when it ends.
func (ix *Index) watch(ctx context.Context) {
	t := time.NewTicker(ix.cfg.LagEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := ix.observe(ctx, true)
		p := &ix.progress
		p.mu.Lock()
		changed := st.Stalled != p.stalled
		p.stalled = st.Stalled
		p.mu.Unlock()
		switch {
		case changed && st.Stalled:
			ix.logger.Warn("dead-letter index stalled", "not_indexed", st.Lag, "indexed_seq", st.Indexed, "dlq_last_seq", st.LastSeq, "why", st.Why)
		case changed:
			ix.logger.Info("dead-letter index moving again", "not_indexed", st.Lag)
		}
	}
}

// Status says how far the index is behind the DLQ stream, whether it
// stalled and why, and which dead letters it could not store. While the
// index runs, the stream's last sequence is the one read at most
// Config.LagEvery ago; while it does not, Status reads it from NATS
// (within ctx, and at most 2 s) when that read is older. An error is a
// failure to read the database.
func (ix *Index) Status(ctx context.Context) (Status, error) {
	st := ix.observe(ctx, false)
	var err error
	if st.Unindexable, st.Recent, err = ix.db.UnindexableDeadLetters(ctx, recentUnindexable); err != nil {
		return st, err
	}
	return st, nil
}
