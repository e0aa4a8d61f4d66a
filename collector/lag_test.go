package collector

import (
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/store"
)

// lagNow is the evaluations' clock: no test here sleeps or reads the time.
var lagNow = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)

// lagSeries builds a window of samples 10 s apart ending at lagNow, one
// per pending value, with the ack floor and delivered sequence moving by
// ackStep and deliverStep per sample, and ackPending unacknowledged in
// flight in each.
func lagSeries(pending []uint64, ackPending, ackStep, deliverStep uint64) []lagSample {
	w := make([]lagSample, len(pending))
	for i, p := range pending {
		k := uint64(i)
		w[i] = lagSample{
			at:      lagNow.Add(-time.Duration(len(pending)-1-i) * 10 * time.Second).UnixMilli(),
			pending: p, backlog: p + ackPending,
			delivered: 1000 + k*deliverStep, ackFloor: 900 + k*ackStep,
		}
	}
	return w
}

func steps(from uint64, step int64, n int) []uint64 {
	out := make([]uint64, n)
	v := int64(from)
	for i := range out {
		out[i] = uint64(v)
		v += step
	}
	return out
}

func TestEvaluateLag(t *testing.T) {
	t.Parallel()
	rules := lagRules{StallAfter: 5 * time.Minute, MaxAge: 5 * time.Minute}
	pulling := lagFacts{numWaiting: 1, created: lagNow.Add(-time.Hour)}
	ago := func(d time.Duration) *time.Time { return ptr(lagNow.Add(-d)) }
	with := func(f lagFacts, change func(*lagFacts)) lagFacts { change(&f); return f }
	cases := []struct {
		name   string
		window []lagSample
		facts  lagFacts
		want   string
		// arrival and ack are checked when either is set; drain when set.
		arrival, ack float64
		drain        float64
		idleSince    *time.Time
		why          string
	}{{
		name: "deleted is stopped whatever the samples", window: lagSeries(steps(100, 100, 10), 5, 10, 10),
		facts: with(pulling, func(f *lagFacts) { f.deletedAt = ago(time.Minute) }), want: store.LagStopped,
		idleSince: ago(time.Minute), why: "deleted",
	}, {
		name: "no samples yet is ok", facts: pulling, want: store.LagOK,
	}, {
		name: "nothing unacknowledged is ok", window: lagSeries(make([]uint64, 10), 0, 0, 0), facts: pulling, want: store.LagOK,
	}, {
		name: "paused is stopped", window: lagSeries(steps(10, 10, 5), 0, 0, 0),
		facts: with(pulling, func(f *lagFacts) { f.paused = true }), want: store.LagPaused, why: "paused",
	}, {
		// ORDERS/shipping in the demo: 20/s arrive, 12/s are acked, 50 in
		// flight (its max ack pending).
		name: "pending rising while acking is falling behind", window: lagSeries(steps(957, 80, 10), 50, 120, 120),
		facts: pulling, want: store.LagFallingBehind, arrival: 20, ack: 12, why: "falling behind: 1677 pending and rising (20/s arriving, 12/s acknowledged",
	}, {
		name: "a rise over two samples is too early to judge", window: lagSeries([]uint64{100, 900}, 50, 10, 10),
		facts: pulling, want: store.LagOK, arrival: 81, ack: 1,
	}, {
		name: "a rise in a window that caught up once is ok", window: lagSeries([]uint64{0, 40, 80, 120, 160, 200, 240, 280, 320, 360}, 0, 10, 10),
		facts: pulling, want: store.LagOK,
	}, {
		name: "a rise within the tolerance is noise", window: lagSeries([]uint64{1000, 1004, 998, 1003, 1001, 999, 1005, 1002, 1006, 1008}, 0, 10, 10),
		facts: pulling, want: store.LagOK,
	}, {
		name: "a slow steady rise is falling behind", window: lagSeries(steps(1000, 5, 10), 0, 10, 10),
		facts: pulling, want: store.LagFallingBehind,
	}, {
		// A consumer that fetches a batch every 30 s: pending is a
		// saw-tooth that never reaches 0 and does not grow.
		name: "a saw-tooth at its peak is ok", window: lagSeries([]uint64{120, 220, 320, 110, 210, 310, 105, 205, 305, 325}, 0, 10, 10),
		facts: pulling, want: store.LagOK,
	}, {
		name: "a rising saw-tooth is falling behind", window: lagSeries([]uint64{120, 220, 320, 150, 250, 350, 180, 280, 380, 410}, 0, 10, 10),
		facts: pulling, want: store.LagFallingBehind,
	}, {
		// 100 fewer pending each 10 s: 10/s net, 3100 left.
		name: "pending falling is draining, with a time to drain", window: lagSeries(steps(4000, -100, 10), 50, 300, 300),
		facts: pulling, want: store.LagDraining, arrival: 20, ack: 30, drain: 310, why: "draining: 3100 pending and falling, about 5m 10s to catch up",
	}, {
		name: "a fall within the tolerance is ok", window: lagSeries([]uint64{500, 498, 501, 497, 499, 496, 495, 494, 493, 492}, 0, 10, 10),
		facts: pulling, want: store.LagOK,
	}, {
		name: "nothing pending with acks in flight is ok", window: lagSeries([]uint64{40, 30, 20, 10, 0}, 30, 10, 10),
		facts: pulling, want: store.LagOK,
	}, {
		// Handler failing every message: redeliveries move the delivered
		// sequence, nothing is acked.
		name: "delivering without acks over a full window is stalled", window: lagSeries(steps(200, 0, 10), 50, 0, 7),
		facts: with(pulling, func(f *lagFacts) { f.lastDelivery, f.lastAck = ago(time.Second), ago(10*time.Minute) }),
		want:  store.LagStalled, idleSince: ago(10 * time.Minute), why: "nothing acknowledged for 10m although messages are delivered",
	}, {
		name: "pulls waiting and nothing delivered is stalled", window: lagSeries(steps(200, 10, 10), 50, 0, 0),
		facts: with(pulling, func(f *lagFacts) {
			f.numWaiting = 3
			f.lastDelivery, f.lastAck = ago(3*time.Minute), ago(3*time.Minute)
		}),
		want: store.LagStalled, idleSince: ago(3 * time.Minute), why: "although 3 pull requests wait",
	}, {
		name: "nobody pulling and nothing delivered over a full window is stopped", window: lagSeries(steps(200, 10, 10), 0, 0, 0),
		facts: with(pulling, func(f *lagFacts) {
			f.numWaiting = 0
			f.lastDelivery, f.lastAck = ago(2*time.Minute), ago(2*time.Minute)
		}),
		want: store.LagStopped, idleSince: ago(2 * time.Minute), why: "stopped: nobody is consuming (no pull requests waiting): 290 unacknowledged",
	}, {
		name: "a push consumer without subscriber is stopped", window: lagSeries(steps(200, 10, 10), 0, 0, 0),
		facts: with(pulling, func(f *lagFacts) { f.push, f.numWaiting = true, 0 }),
		want:  store.LagStopped, why: "no subscriber on its deliver subject",
	}, {
		name: "the server's times say stopped from the first sample", window: lagSeries([]uint64{40}, 0, 0, 0),
		facts: with(pulling, func(f *lagFacts) {
			f.numWaiting = 0
			f.lastDelivery, f.lastAck = ago(10*time.Minute), ago(11*time.Minute)
		}),
		want: store.LagStopped, idleSince: ago(10 * time.Minute), why: "nothing delivered or acknowledged for 10m",
	}, {
		name: "never delivered since created long ago is stopped", window: lagSeries([]uint64{40}, 0, 0, 0),
		facts: with(pulling, func(f *lagFacts) { f.numWaiting = 0 }),
		want:  store.LagStopped, idleSince: ptr(lagNow.Add(-time.Hour)),
	}, {
		// One message in a long backoff holds the ack floor while the
		// others are acked: the server's last ack says it progresses.
		name: "acks behind a held ack floor are progress", window: lagSeries(steps(300, -20, 10), 40, 0, 20),
		facts: with(pulling, func(f *lagFacts) { f.lastDelivery, f.lastAck = ago(time.Second), ago(2*time.Second) }),
		want:  store.LagDraining, drain: 60,
	}, {
		name: "rising without acks before the window fills is falling behind", window: lagSeries(steps(100, 50, 5), 20, 0, 0),
		facts: with(pulling, func(f *lagFacts) { f.lastDelivery, f.lastAck = ago(time.Minute), ago(time.Minute) }),
		want:  store.LagFallingBehind, arrival: 5, ack: 0,
	}, {
		name: "ack policy none progresses by deliveries", window: lagSeries(steps(200, 0, 10), 0, 0, 30),
		facts: with(pulling, func(f *lagFacts) { f.ackNone = true; f.lastDelivery = ago(time.Second) }),
		want:  store.LagOK, arrival: 3, ack: 3,
	}, {
		// The consumer was recreated under the same name 3 samples ago:
		// the window before that is another consumer's.
		name: "a reset starts the window again", window: func() []lagSample {
			w := lagSeries(steps(5000, 100, 10), 0, 10, 10)
			for i, p := range []uint64{10, 8, 6} {
				w[7+i] = lagSample{at: w[7+i].at, pending: p, backlog: p, delivered: 5 + 2*uint64(i), ackFloor: 5 + 2*uint64(i)}
			}
			return w
		}(),
		facts: pulling, want: store.LagOK,
	}, {
		name: "samples older than the max age are left out", window: append([]lagSample{
			{at: lagNow.Add(-time.Hour).UnixMilli(), pending: 100000, backlog: 100000, delivered: 1, ackFloor: 1}},
			lagSeries(steps(100, 0, 4), 0, 10, 10)...),
		facts: pulling, want: store.LagOK, arrival: 1, ack: 1,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := evaluateLag(tc.window, tc.facts, lagNow, rules)
			require.Equal(t, tc.want, got.State, got.Why)
			if tc.arrival != 0 || tc.ack != 0 {
				require.InDelta(t, tc.arrival, got.ArrivalPerSec, 0.01, "arrival")
				require.InDelta(t, tc.ack, got.AckPerSec, 0.01, "ack")
			}
			if tc.drain != 0 {
				require.NotNil(t, got.DrainSeconds)
				require.InDelta(t, tc.drain, *got.DrainSeconds, 0.01)
			} else {
				require.Nil(t, got.DrainSeconds)
			}
			if tc.idleSince != nil {
				require.NotNil(t, got.IdleSince)
				require.Equal(t, *tc.idleSince, *got.IdleSince)
			}
			require.Contains(t, got.Why, tc.why)
			if tc.want == store.LagOK {
				require.Empty(t, got.Why, "ok needs no explanation")
			}
		})
	}
}

func TestLagWindowKeepsTheLastSamplesAndItsSpan(t *testing.T) {
	t.Parallel()
	var w lagWindow
	for i := range 15 {
		w.add(lagSample{at: int64(i) * 10_000, pending: uint64(i)}, 5_000)
	}
	require.Equal(t, lagWindowSamples, int(w.n))
	require.Equal(t, uint64(5), w.sample(0).pending, "the oldest five slid out")
	require.Equal(t, int64(50_000), w.sample(0).at)
	require.Equal(t, uint64(14), w.sample(int(w.n)-1).pending)

	// A cycle run again 1 s later replaces the newest sample rather than
	// pushing out the oldest.
	w.add(lagSample{at: 141_000, pending: 99}, 5_000)
	require.Equal(t, lagWindowSamples, int(w.n))
	require.Equal(t, uint64(5), w.sample(0).pending)
	require.Equal(t, uint64(99), w.sample(int(w.n)-1).pending)
	require.Equal(t, int64(141_000), w.sample(int(w.n)-1).at)
}

// The window keeps its samples packed: what it gives back is what was
// added, through many wraps and months of Unix-ms times, so the trend
// judged from it is the one judged from the samples themselves.
func TestLagWindowGivesBackWhatWasAdded(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var w lagWindow
	var added []lagSample
	// 120 days of 10 s samples: the times pass 49 days (uint32 ms) from
	// the first sample twice over; pending rises, with a backlog above
	// it beyond what 32 bits hold now and then.
	for i := range 120 * 24 * 360 {
		s := lagSample{at: start + int64(i)*10_000 + int64(i%7), pending: uint64(i) * 3, delivered: uint64(i) * 5, ackFloor: uint64(i) * 4}
		s.backlog = s.pending + uint64(i%13)
		if i%1000 == 999 {
			s.backlog = s.pending + 1<<40
		}
		w.add(s, 5_000)
		added = append(added[max(0, len(added)-lagWindowSamples+1):], s)
		if i%1000 == 999 {
			s.backlog = s.pending + math.MaxUint32 // what a packed sample holds at most
			added[len(added)-1] = s
		}
	}
	var buf [lagWindowSamples]lagSample
	require.Equal(t, added, w.unpack(&buf))

	// Then a backlog that grows: falling behind, judged the same.
	last := added[len(added)-1]
	for k := range lagWindowSamples {
		s := lagSample{at: last.at + int64(k+1)*10_000, pending: uint64(k+1) * 1000, delivered: last.delivered + uint64(k+1)*50,
			ackFloor: last.ackFloor + uint64(k+1)*50}
		s.backlog = s.pending + 5
		w.add(s, 5_000)
		added = append(added[1:], s)
	}
	got := w.unpack(&buf)
	require.Equal(t, added, got)

	now := time.UnixMilli(added[len(added)-1].at)
	rules := lagRules{StallAfter: 5 * time.Minute, MaxAge: 300 * time.Second}
	facts := lagFacts{created: time.UnixMilli(start), numWaiting: 1}
	want := evaluateLag(slices.Clone(added), facts, now, rules)
	require.Equal(t, store.LagFallingBehind, want.State)
	require.Equal(t, want, evaluateLag(got, facts, now, rules))
}

// A sample further than 49 days from the window's, or before them (the
// clock went back), starts the window again: those are never compared.
func TestLagWindowStartsAgainAfterALongGapOrAClockStepBack(t *testing.T) {
	t.Parallel()
	var w lagWindow
	for i := range 5 {
		w.add(lagSample{at: 1_000_000 + int64(i)*10_000, pending: uint64(i)}, 5_000)
	}
	late := lagSample{at: 1_040_000 + 50*24*3600*1000, pending: 7, backlog: 7}
	w.add(late, 5_000)
	require.Equal(t, 1, int(w.n))
	require.Equal(t, late, w.sample(0))

	w.add(lagSample{at: late.at + 10_000, pending: 8}, 5_000)
	back := lagSample{at: late.at - 60_000, pending: 9, backlog: 9}
	w.add(back, 5_000)
	require.Equal(t, 1, int(w.n), "the clock went back a minute")
	require.Equal(t, back, w.sample(0))
}

// A window never holds a sequence going back, which only a consumer
// recreated under its name shows: it starts again there, as the
// judgement would have cut it (lagTrim). Sequences far beyond 32 bits are
// held, and a jump of more than 32 bits within a window starts it again.
func TestLagWindowStartsAgainAtAResetAndHoldsLargeSequences(t *testing.T) {
	t.Parallel()
	require.LessOrEqual(t, unsafe.Sizeof(lagWindow{}), uintptr(288), "100,000 consumers keep one each")
	const big = 1 << 40
	sample := func(i int, delivered, ackFloor uint64) lagSample {
		return lagSample{at: int64(i) * 10_000, pending: uint64(i), backlog: uint64(i) + 3, delivered: delivered, ackFloor: ackFloor}
	}
	var w lagWindow
	var added []lagSample
	for i := range 15 {
		s := sample(i, big+uint64(i)*100, big+uint64(i)*90)
		w.add(s, 5_000)
		added = append(added[max(0, len(added)-lagWindowSamples+1):], s)
	}
	var buf [lagWindowSamples]lagSample
	require.Equal(t, added, w.unpack(&buf))

	for _, tc := range []struct {
		name string
		s    lagSample
	}{
		{"delivered went back", sample(20, 5, 3)},
		{"the ack floor went back", sample(21, big+20_000, big-5)},
		{"a jump beyond 32 bits", sample(22, big+20_000+1<<33, big+20_000+1<<33)},
	} {
		// A window with samples to start again from.
		w.add(sample(30, big, big), 5_000)
		w.add(sample(31, big+1, big+1), 5_000)
		tc.s.at = int64(32) * 10_000
		w.add(tc.s, 5_000)
		require.Equal(t, []lagSample{tc.s}, w.unpack(&buf), tc.name)
		w = lagWindow{}
	}

	// Sequences 4 billion apart in one sample, which no server reports,
	// hold the higher at 4 billion above the lower.
	w.add(sample(40, 5, big), 5_000)
	require.Equal(t, []lagSample{{at: 400_000, pending: 40, backlog: 43, delivered: 5, ackFloor: 5 + math.MaxUint32}}, w.unpack(&buf))

	// The window judged is the one lagTrim leaves of the samples.
	w = lagWindow{}
	var all []lagSample
	for i := range 6 {
		s := sample(i, 1000+uint64(i)*10, 900+uint64(i)*10)
		if i >= 3 {
			s.delivered, s.ackFloor = uint64(i), uint64(i) // recreated after the third
		}
		w.add(s, 5_000)
		all = append(all, s)
	}
	require.Equal(t, lagTrim(all, time.UnixMilli(all[5].at), 0), w.unpack(&buf))
}
