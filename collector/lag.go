package collector

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jetwatch/jetwatch/internal/human"
	"github.com/jetwatch/jetwatch/store"
)

// Consumer lag is judged as a trend, in the manner of LinkedIn Burrow's
// evaluator: no threshold on pending messages, but rules over a sliding
// window of the consumer's samples that tell a consumer keeping up from
// one falling behind, stalled or stopped. evaluateLag holds the rules;
// lagTracker keeps each consumer's window in memory, so a cycle costs
// O(consumers) and no SQL per consumer, and seeds the windows from the
// stored samples after a restart.

const (
	// lagWindowSamples is the window: a consumer's last 10 samples (100 s
	// at the default 10 s interval).
	lagWindowSamples = 10
	// lagMinSamples is how many samples the window needs before a trend
	// (falling behind, draining) is judged.
	lagMinSamples = 3
	// lagTolerance and lagToleranceRatio are the change in pending that
	// counts as a trend: more than max(10 messages, 1 % of the backlog
	// compared with). Smaller moves are noise.
	lagTolerance      = 10
	lagToleranceRatio = 0.01
	// lagWindowAges is how many windows' worth of intervals a sample may
	// be old and still count: samples from before a long gap (jetwatch
	// down, NATS away) are not compared with today's.
	lagWindowAges = 3
)

// lagSample is one sample as the rules read it; a window keeps it
// packed (packedSample).
type lagSample struct {
	at        int64  // unix ms
	pending   uint64 // num_pending: not yet delivered
	backlog   uint64 // num_pending + num_ack_pending: not yet acknowledged
	delivered uint64 // delivered consumer sequence: counts every delivery, redeliveries too
	ackFloor  uint64 // ack floor consumer sequence
}

func sampleOf(c *store.Consumer, at time.Time) lagSample {
	return lagSample{at: at.UnixMilli(), pending: c.NumPending, backlog: c.NumPending + uint64(max(c.NumAckPending, 0)),
		delivered: c.Delivered.ConsumerSeq, ackFloor: c.AckFloor.ConsumerSeq}
}

// lagFacts is what JetStream says of the consumer now, beside its numbers.
type lagFacts struct {
	ackNone    bool // ack policy none: a delivery is all the progress there is
	paused     bool
	push       bool
	pushBound  bool // a push consumer has an active subscriber
	numWaiting int  // pull requests waiting
	created    time.Time
	// lastDelivery and lastAck are the server's times of the last
	// delivery and the last acknowledgement; nil when it has none (never,
	// or not since its leader started).
	lastDelivery, lastAck *time.Time
	deletedAt             *time.Time
}

func factsOf(c *store.Consumer) lagFacts {
	return lagFacts{ackNone: c.AckPolicy == "none", paused: c.Paused, push: c.Push, pushBound: c.PushBound,
		numWaiting: c.NumWaiting, created: c.Created, lastDelivery: c.Delivered.LastActive, lastAck: c.AckFloor.LastActive,
		deletedAt: c.DeletedAt}
}

// lagRules are the evaluation's settings.
type lagRules struct {
	// StallAfter is how long a consumer with something pending may go
	// without a delivery or acknowledgement before it counts as stalled
	// (or stopped) even without a full window.
	StallAfter time.Duration
	// MaxAge is how old a sample may be and still be in the window.
	MaxAge time.Duration
}

// lagResult is a consumer's judged lag.
type lagResult struct {
	State string
	// ArrivalPerSec and AckPerSec are rates over the window; 0 with fewer
	// than two samples.
	ArrivalPerSec, AckPerSec float64
	// DrainSeconds is set while draining.
	DrainSeconds  *float64
	WindowSeconds float64
	// Samples is how many samples the window held.
	Samples int
	// IdleSince is, when stalled or stopped, when it last made progress
	// (or the earliest time known to be without any).
	IdleSince *time.Time
	// Why says, for every state but ok, what was seen, in the operator's
	// words.
	Why string
}

// evaluateLag judges a consumer's lag from its window of samples (oldest
// first, the newest taken now) and what JetStream says of it now. The
// rules, first match wins:
//
//  1. Deleted: the consumer no longer exists → stopped.
//  2. The window starts after the last reset (delivered or ack floor
//     sequence going back: the consumer was recreated) and holds no
//     sample older than MaxAge.
//  3. Paused → paused: on purpose, until a time; pending grows, as
//     expected, so no rule of lag applies (its health says paused, a
//     warning).
//  4. Nothing unacknowledged now (pending + ack pending = 0) → ok: there
//     is nothing to do (Burrow: zero lag is ok).
//  5. No progress: nothing acknowledged within the window (the ack floor
//     did not move and the last ack is older than the window; for ack
//     policy none, nothing delivered), and either the window is full
//     (lagWindowSamples samples, each with something unacknowledged) or
//     nothing was acknowledged for StallAfter (the server's time of the
//     last ack, else the consumer's creation). Then:
//     stopped when also nothing was delivered in the window and nobody
//     asks for messages (a pull consumer with no waiting pull requests, a
//     push consumer with no subscriber); stalled otherwise (someone is
//     there: redeliveries without acks, or pulls that get nothing).
//  6. Fewer than lagMinSamples samples → ok: too early to see a trend.
//  7. Nothing pending (undelivered) now → ok: it keeps up; what is
//     delivered and not yet acked is in flight.
//  8. Falling behind: pending was above 0 in every sample (it never
//     caught up within the window) and now exceeds the highest pending of
//     the window's older half by more than the tolerance (max(10, 1 % of
//     that highest)). Comparing with the older half's extreme, not the
//     first sample, keeps a consumer that fetches in batches (pending a
//     saw-tooth) from counting as falling behind.
//  9. Draining: pending now is below the lowest pending of the window's
//     older half by more than the tolerance. Time to drain = pending now
//     / net drain rate, the fall from the oldest sample to now per
//     second.
//  10. Otherwise ok.
//
// Rates: ack rate = ack floor movement over the window (for ack policy
// none, deliveries); arrival rate = ack rate + change of the
// unacknowledged backlog over the window, at least 0 (each message that
// arrives is either still unacknowledged or was acknowledged).
func evaluateLag(w []lagSample, f lagFacts, now time.Time, r lagRules) lagResult {
	res := lagResult{State: store.LagOK}
	if f.deletedAt != nil {
		res.State, res.IdleSince = store.LagStopped, f.deletedAt
		res.Why = "deleted: it no longer exists on the server"
		return res
	}
	w = lagTrim(w, now, r.MaxAge)
	n := len(w)
	res.Samples = n
	if n == 0 {
		return res
	}
	oldest, newest := w[0], w[n-1]
	span := float64(newest.at-oldest.at) / 1000
	progress := func(s lagSample) uint64 {
		if f.ackNone {
			return s.delivered
		}
		return s.ackFloor
	}
	if n >= 2 && span > 0 {
		res.WindowSeconds = span
		res.AckPerSec = float64(progress(newest)-progress(oldest)) / span
		res.ArrivalPerSec = max(0, res.AckPerSec+(float64(newest.backlog)-float64(oldest.backlog))/span)
	}
	if f.paused {
		res.State = store.LagPaused
		res.Why = "paused: the server delivers nothing until it resumes, so pending grows; that is expected"
		return res
	}
	if newest.backlog == 0 {
		return res
	}

	windowStart := time.UnixMilli(oldest.at)
	after := func(t *time.Time) bool { return t != nil && t.After(windowStart) }
	// latest is the last of the times known, or the consumer's creation.
	latest := func(ts ...*time.Time) time.Time {
		last := f.created
		for _, t := range ts {
			if t != nil && t.After(last) {
				last = *t
			}
		}
		return last
	}
	lastAck := f.lastAck
	if f.ackNone {
		lastAck = f.lastDelivery
	}
	acked := progress(newest) > progress(oldest) || (n >= 2 && after(lastAck))
	delivered := newest.delivered > oldest.delivered || (n >= 2 && after(f.lastDelivery))
	fullWindow := n >= lagWindowSamples
	for _, s := range w {
		fullWindow = fullWindow && s.backlog > 0
	}
	if !acked && (fullWindow || now.Sub(latest(lastAck)) >= r.StallAfter) {
		nobody := (f.push && !f.pushBound) || (!f.push && f.numWaiting == 0)
		idleSince := latest(lastAck)
		if !delivered && nobody {
			idleSince = latest(f.lastDelivery, f.lastAck)
		}
		res.IdleSince = &idleSince
		idle := human.Duration(now.Sub(idleSince))
		switch {
		case !delivered && nobody:
			res.State = store.LagStopped
			who := "no pull requests waiting"
			if f.push {
				who = "no subscriber on its deliver subject"
			}
			res.Why = fmt.Sprintf("stopped: nobody is consuming (%s): %d unacknowledged, nothing delivered or acknowledged for %s",
				who, newest.backlog, idle)
		case delivered:
			res.State = store.LagStalled
			res.Why = fmt.Sprintf("stalled: %d unacknowledged and nothing acknowledged for %s although messages are delivered (redelivered without acks?)",
				newest.backlog, idle)
		default:
			res.State = store.LagStalled
			res.Why = fmt.Sprintf("stalled: %d unacknowledged and nothing delivered or acknowledged for %s although %s",
				newest.backlog, idle, askers(f))
		}
		return res
	}
	if n < lagMinSamples || newest.pending == 0 {
		return res
	}

	older := w[:n/2]
	hi, lo := older[0].pending, older[0].pending
	for _, s := range older {
		hi, lo = max(hi, s.pending), min(lo, s.pending)
	}
	alwaysPending := true
	for _, s := range w {
		alwaysPending = alwaysPending && s.pending > 0
	}
	over := func(base uint64) uint64 { return max(lagTolerance, uint64(float64(base)*lagToleranceRatio)) }
	switch {
	case alwaysPending && newest.pending > hi+over(hi):
		res.State = store.LagFallingBehind
		res.Why = fmt.Sprintf("falling behind: %d pending and rising (%s arriving, %s acknowledged, over the last %s)",
			newest.pending, perSecond(res.ArrivalPerSec), perSecond(res.AckPerSec), human.Duration(time.Duration(span*float64(time.Second))))
	case newest.pending+over(lo) < lo:
		res.State = store.LagDraining
		drain := float64(newest.pending) / (float64(oldest.pending-newest.pending) / span)
		res.DrainSeconds = &drain
		res.Why = fmt.Sprintf("draining: %d pending and falling, about %s to catch up",
			newest.pending, human.Duration(time.Duration(drain*float64(time.Second))))
	}
	return res
}

// lagTrim drops what the window must not compare: samples from before
// the last reset, and samples older than maxAge.
func lagTrim(w []lagSample, now time.Time, maxAge time.Duration) []lagSample {
	for i := len(w) - 1; i > 0; i-- {
		if w[i].delivered < w[i-1].delivered || w[i].ackFloor < w[i-1].ackFloor {
			w = w[i:]
			break
		}
	}
	if maxAge > 0 {
		oldest := now.Add(-maxAge).UnixMilli()
		for len(w) > 1 && w[0].at < oldest {
			w = w[1:]
		}
	}
	return w
}

func askers(f lagFacts) string {
	if f.push {
		return "a subscriber is bound"
	}
	if f.numWaiting == 1 {
		return "1 pull request waits"
	}
	return fmt.Sprintf("%d pull requests wait", f.numWaiting)
}

func perSecond(v float64) string {
	switch {
	case v == 0:
		return "0/s"
	case v < 10:
		return fmt.Sprintf("%.1f/s", v)
	}
	return fmt.Sprintf("%.0f/s", v)
}

// lagWindow is one consumer's window, oldest first. Its samples are kept
// packed, 24 bytes rather than 40, and the window in 288 bytes rather
// than 448: 100,000 consumers' windows are the largest thing jetwatch
// keeps between cycles.
type lagWindow struct {
	// base is the time the samples' times count from, in Unix ms: the
	// oldest sample's.
	base int64
	// seqBase is what the samples' delivered and ack floor sequences
	// count from: the lower of the oldest sample's two. A window never
	// holds a sequence going back (see add), so none is below it.
	seqBase uint64
	samples [lagWindowSamples]packedSample
	// seen is the cycle that last listed the consumer.
	seen uint64
	n    uint8
	// longLived is set for a consumer that is not jetwatch's and has no
	// inactive threshold: one that is meant to stay, so its deletion is
	// worth showing. Ephemeral consumers come and go all the time.
	longLived bool
}

// packedSample is a lagSample within its window: its time after the
// window's base, its sequences after the window's seqBase, and its
// unacknowledged backlog as what is delivered and not acknowledged on
// top of pending.
type packedSample struct {
	at         uint32 // ms after the window's base: 49 days
	ackPending uint32 // backlog - pending, at most math.MaxUint32
	pending    uint64
	delivered  uint32 // after seqBase: 4 billion deliveries in a window
	ackFloor   uint32 // after seqBase
}

// sample is the window's i-th sample.
func (w *lagWindow) sample(i int) lagSample {
	p := &w.samples[i]
	return lagSample{at: w.base + int64(p.at), pending: p.pending, backlog: p.pending + uint64(p.ackPending),
		delivered: w.seqBase + uint64(p.delivered), ackFloor: w.seqBase + uint64(p.ackFloor)}
}

// unpack is the window's samples, oldest first, in buf.
func (w *lagWindow) unpack(buf *[lagWindowSamples]lagSample) []lagSample {
	for i := range int(w.n) {
		buf[i] = w.sample(i)
	}
	return buf[:w.n]
}

// add appends s, or replaces the newest sample when s follows it by less
// than minGap (a cycle run twice in quick succession), so the window
// keeps its span. A sequence going back (the consumer was recreated)
// starts the window again from s: the judgement compares nothing from
// before a reset (see lagTrim), so nothing before it is kept.
func (w *lagWindow) add(s lagSample, minGap int64) {
	switch {
	case w.n > 0 && s.at-w.sample(int(w.n)-1).at < minGap:
		w.n--
	case int(w.n) == lagWindowSamples:
		copy(w.samples[:], w.samples[1:])
		w.n--
	}
	if w.n > 0 {
		// The oldest may have slid out: count from the new oldest.
		if d := w.samples[0].at; d > 0 {
			for i := range int(w.n) {
				w.samples[i].at -= d
			}
			w.base += int64(d)
		}
		if d := min(w.samples[0].delivered, w.samples[0].ackFloor); d > 0 {
			for i := range int(w.n) {
				w.samples[i].delivered -= d
				w.samples[i].ackFloor -= d
			}
			w.seqBase += uint64(d)
		}
	}
	restart := w.n == 0 || s.at < w.base || s.at-w.base > math.MaxUint32
	if !restart {
		// Samples 49 days older than s, or newer (the clock went back),
		// are not compared with it, nor those before a reset, nor
		// sequences 4 billion apart (which 32 bits do not hold).
		last := w.sample(int(w.n) - 1)
		restart = s.delivered < last.delivered || s.ackFloor < last.ackFloor ||
			s.delivered-w.seqBase > math.MaxUint32 || s.ackFloor-w.seqBase > math.MaxUint32
	}
	if restart {
		w.n, w.base, w.seqBase = 0, s.at, min(s.delivered, s.ackFloor)
	}
	var ackPending uint64
	if s.backlog > s.pending {
		ackPending = min(s.backlog-s.pending, math.MaxUint32)
	}
	// Only a window's first sample can have its two sequences more than
	// 32 bits apart, which no server reports (the ack floor trails what
	// is delivered by what is in flight): the higher is then held at
	// 4 billion above the lower.
	w.samples[w.n] = packedSample{at: uint32(s.at - w.base), ackPending: uint32(ackPending), pending: s.pending,
		delivered: uint32(min(s.delivered-w.seqBase, math.MaxUint32)), ackFloor: uint32(min(s.ackFloor-w.seqBase, math.MaxUint32))}
	w.n++
}

// lagTracker keeps every consumer's window and the consumers found
// deleted, and judges each consumer as a cycle reads it. A cycle calls
// begin, then judge for every consumer read and touch for every consumer
// not read, then deleted once per stream, then end. Safe for concurrent
// use within a cycle.
type lagTracker struct {
	rules   lagRules
	minGap  int64         // ms
	goneFor time.Duration // how long a deleted consumer stays listed

	mu      sync.Mutex
	cycle   uint64
	seeded  bool
	windows map[string]map[string]*lagWindow // stream -> consumer
	gone    map[string]map[string]store.Consumer
	guards  map[string][]store.Breaker
}

func newLagTracker(interval, stallAfter, goneFor time.Duration) *lagTracker {
	return &lagTracker{
		rules:   lagRules{StallAfter: stallAfter, MaxAge: lagWindowAges * lagWindowSamples * interval},
		minGap:  (interval / 2).Milliseconds(),
		goneFor: goneFor,
		windows: map[string]map[string]*lagWindow{},
		gone:    map[string]map[string]store.Consumer{},
	}
}

// seed fills the windows from the stored samples and takes back the
// consumers stored as deleted, so a restart continues the judgement.
func (t *lagTracker) seed(ctx context.Context, db *store.DB, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seeded {
		return nil
	}
	if err := t.seedLocked(ctx, db, now); err != nil {
		// Start again from nothing next cycle, rather than from half.
		t.windows, t.gone = map[string]map[string]*lagWindow{}, map[string]map[string]store.Consumer{}
		return err
	}
	t.seeded = true
	return nil
}

func (t *lagTracker) seedLocked(ctx context.Context, db *store.DB, now time.Time) error {
	kinds, err := db.ConsumerKinds(ctx)
	if err != nil {
		return fmt.Errorf("seed lag windows: %w", err)
	}
	for _, k := range kinds {
		if k.Deleted {
			c, err := db.Consumer(ctx, k.Stream, k.Name)
			if err != nil {
				return fmt.Errorf("seed lag windows: %w", err)
			}
			t.goneOf(k.Stream)[k.Name] = c
			continue
		}
		// Until the first cycle reads it, whether it is meant to stay is
		// known only from the stored row: a durable that is not jetwatch's.
		t.window(k.Stream, k.Name).longLived = k.Durable && !k.Own
	}
	err = db.RecentConsumerSamples(ctx, now.Add(-t.rules.MaxAge), func(stream, consumer string, p store.ConsumerPoint) {
		if w := t.windows[stream][consumer]; w != nil {
			w.add(lagSample{at: p.At.UnixMilli(), pending: p.NumPending, backlog: p.NumPending + p.NumAckPending,
				delivered: p.DeliveredSeq, ackFloor: p.AckFloorSeq}, t.minGap)
		}
	})
	if err != nil {
		return fmt.Errorf("seed lag windows: %w", err)
	}
	return nil
}

func (t *lagTracker) window(stream, consumer string) *lagWindow {
	ws := t.windows[stream]
	if ws == nil {
		ws = map[string]*lagWindow{}
		t.windows[stream] = ws
	}
	w := ws[consumer]
	if w == nil {
		w = &lagWindow{}
		ws[consumer] = w
	}
	return w
}

// count is how many consumers have a window.
func (t *lagTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, ws := range t.windows {
		n += len(ws)
	}
	return n
}

func (t *lagTracker) goneOf(stream string) map[string]store.Consumer {
	g := t.gone[stream]
	if g == nil {
		g = map[string]store.Consumer{}
		t.gone[stream] = g
	}
	return g
}

// begin starts a cycle with the breakers as they are now: those not
// closed, by stream and consumer.
func (t *lagTracker) begin(breakers []store.Breaker) {
	guards := map[string][]store.Breaker{}
	for _, b := range breakers {
		if b.State == store.BreakerClosed || b.Stale || b.Stream == "" || b.Consumer == "" {
			continue
		}
		k := b.Stream + "\x00" + b.Consumer
		guards[k] = append(guards[k], b)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cycle++
	t.guards = guards
}

// judge adds c's sample taken at at to its window and sets its lag and
// health. longLived says whether its deletion would be worth showing.
// It returns the window's newest sample before this one (ok false when
// there was none), for the rates from one sample to the next.
func (t *lagTracker) judge(c *store.Consumer, longLived bool, at, now time.Time) (prev lagSample, ok bool) {
	t.mu.Lock()
	w := t.window(c.Stream, c.Name)
	if w.n > 0 {
		prev, ok = w.sample(int(w.n)-1), true
	}
	w.add(sampleOf(c, at), t.minGap)
	w.seen, w.longLived = t.cycle, longLived
	if g := t.gone[c.Stream]; g != nil {
		delete(g, c.Name) // recreated
	}
	guards := t.guards[c.Stream+"\x00"+c.Name]
	var buf [lagWindowSamples]lagSample
	lag := evaluateLag(w.unpack(&buf), factsOf(c), now, t.rules)
	t.mu.Unlock()
	applyLag(c, lag)
	judgeConsumer(c, lag, guards, now)
	return prev, ok
}

// touch marks a consumer that exists but could not be read this cycle.
func (t *lagTracker) touch(stream, consumer string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w := t.windows[stream][consumer]; w != nil {
		w.seen = t.cycle
	}
}

// deleted returns the stream's consumers found deleted, to list for a
// while: once its consumers were all accounted for (complete), a
// long-lived consumer with a window that this cycle did not see is gone.
// stored reads the stream's stored consumers, for the last numbers of one
// just deleted: called only when one is.
func (t *lagTracker) deleted(stream string, complete bool, at time.Time, stored func() ([]store.Consumer, error)) ([]store.Consumer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	if complete {
		var rows map[string]store.Consumer
		for name, w := range t.windows[stream] {
			if w.seen == t.cycle {
				continue
			}
			delete(t.windows[stream], name)
			if !w.longLived || t.goneFor <= 0 {
				continue
			}
			if rows == nil {
				rows = map[string]store.Consumer{}
				var cs []store.Consumer
				cs, err = stored()
				for _, c := range cs {
					rows[c.Name] = c
				}
			}
			c, ok := rows[name]
			if !ok {
				c = store.Consumer{Stream: stream, Name: name, Durable: true}
			}
			c.DeletedAt = &at
			t.goneOf(stream)[name] = c
		}
	}
	var out []store.Consumer
	for name, c := range t.gone[stream] {
		if at.Sub(*c.DeletedAt) > t.goneFor {
			delete(t.gone[stream], name)
			continue
		}
		out = append(out, goneConsumer(c, at))
	}
	return out, err
}

// end closes a cycle: when every stream was accounted for, the windows
// and deleted consumers of streams not among streams (gone) are dropped.
func (t *lagTracker) end(streams []store.Stream, streamsComplete bool) {
	if !streamsComplete {
		return
	}
	listed := make(map[string]bool, len(streams))
	for i := range streams {
		listed[streams[i].Name] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for stream := range t.windows {
		if !listed[stream] {
			delete(t.windows, stream)
		}
	}
	for stream := range t.gone {
		if !listed[stream] {
			delete(t.gone, stream)
		}
	}
}

// forgetUnseen drops the windows of the consumers this cycle did not
// judge, for a tracker that lists no deleted consumers (other accounts'):
// ephemeral consumers come and go, and their windows must go with them.
func (t *lagTracker) forgetUnseen() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for stream, ws := range t.windows {
		for name, w := range ws {
			if w.seen != t.cycle {
				delete(ws, name)
			}
		}
		if len(ws) == 0 {
			delete(t.windows, stream)
		}
	}
}

// goneConsumer is a deleted consumer's row for this cycle: its config
// and when it went, nothing pending (nothing of it is), stopped.
func goneConsumer(c store.Consumer, at time.Time) store.Consumer {
	c.SampledAt = at
	c.NumPending, c.NumAckPending, c.NumRedelivered, c.NumWaiting = 0, 0, 0, 0
	c.DeliveredPerSec, c.AckedPerSec = 0, 0
	c.Unread, c.Cluster, c.Config = nil, nil, nil
	lag := evaluateLag(nil, factsOf(&c), at, lagRules{})
	applyLag(&c, lag)
	judgeConsumer(&c, lag, nil, at)
	return c
}

func applyLag(c *store.Consumer, lag lagResult) {
	c.LagState = cmp.Or(lag.State, store.LagOK)
	c.ArrivalPerSec, c.AckPerSec, c.DrainSeconds = lag.ArrivalPerSec, lag.AckPerSec, lag.DrainSeconds
	c.LagWindowSeconds = lag.WindowSeconds
}
