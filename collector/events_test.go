package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

func TestTimelineRecordsAdvisoriesAndCountsTheNoisyOnes(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	jwConn := natstest.Connect(t, b.srv, nats.Name("jetwatch"))
	jwJS, err := jetstream.New(jwConn)
	require.NoError(t, err)
	require.NoError(t, EnsureStreams(ctx, jwJS, StreamsConfig{}))
	reg := prometheus.NewRegistry()
	tl, err := NewTimeline(jwConn, b.db, TimelineConfig{Registerer: reg, Logger: testLogger(t), CountAPICalls: true})
	require.NoError(t, err)
	require.NoError(t, tl.Start(ctx))
	t.Cleanup(tl.Stop)

	cli := natstest.Connect(t, b.srv, nats.Name("nats-cli"))
	js, err := jetstream.New(cli)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	require.NoError(t, err)
	cons, err := js.CreateOrUpdateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "t.a", []byte("x"))
	require.NoError(t, err)
	fail(t, cons, func(m jetstream.Msg) error { return m.Nak() })
	fail(t, cons, func(m jetstream.Msg) error { return m.TermWithReason("poison") })
	require.NoError(t, cli.Publish("$JS.EVENT.ADVISORY.STREAM.CREATED.BOGUS", []byte("{not json")))
	// Term is sent without waiting; let the server settle it before the
	// stream goes.
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending > 0 {
			return fmt.Errorf("term not settled yet")
		}
		return nil
	})
	require.NoError(t, js.DeleteStream(ctx, "T"))

	var events []store.Event
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		events, err = b.db.Events(ctx, store.EventFilter{})
		if err != nil {
			return err
		}
		kinds := map[string]bool{}
		for _, e := range events {
			kinds[e.Kind] = true
		}
		for _, k := range []string{"stream_create", "consumer_create", "terminated", "malformed", "stream_delete"} {
			if !kinds[k] {
				return fmt.Errorf("no %s event yet in %v", k, kinds)
			}
		}
		return nil
	})
	for _, e := range events {
		if e.Kind == "terminated" {
			require.Equal(t, "message #1 of T terminated by consumer w: poison", e.Summary)
			require.Equal(t, store.SeverityWarning, e.Severity)
		}
		if e.Kind == "malformed" {
			require.Contains(t, e.Summary, "$JS.EVENT.ADVISORY.STREAM.CREATED.BOGUS")
		}
	}

	// Naks are counted, not stored; API calls are counted without
	// jetwatch's own.
	// The nak advisory comes on a core subscription of its own: on a
	// loaded machine it may trail the timeline.
	got := map[string]float64{}
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		families, err := reg.Gather()
		if err != nil {
			return err
		}
		got = map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				got[f.GetName()] += m.GetCounter().GetValue()
			}
		}
		if got["jetwatch_advisory_naks_total"] == 0 {
			return errors.New("no nak counted yet")
		}
		return nil
	})
	require.Equal(t, 1.0, got["jetwatch_advisory_naks_total"])
	// The audit advisories come in order: once a failing call of the
	// CLI's (the only kind that fails here) is counted, so is every call
	// before it. Without this mark a late advisory of an earlier call
	// could be counted after the numbers below were taken.
	apiCalls := func() (all, failed float64, err error) {
		families, err := reg.Gather()
		if err != nil {
			return 0, 0, err
		}
		for _, f := range families {
			if f.GetName() != "jetwatch_jetstream_api_calls_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				all += m.GetCounter().GetValue()
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" && l.GetValue() == "error" {
						failed += m.GetCounter().GetValue()
					}
				}
			}
		}
		return all, failed, nil
	}
	var apiBefore float64
	mark := func(failedBefore float64) {
		t.Helper()
		_, err := js.Stream(ctx, "NO_SUCH_STREAM")
		require.Error(t, err)
		natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			all, failed, err := apiCalls()
			if err != nil {
				return err
			}
			if failed != failedBefore+1 {
				return fmt.Errorf("the mark is not counted yet (%v failed calls)", failed)
			}
			apiBefore = all
			return nil
		})
	}
	mark(0)
	require.Positive(t, apiBefore, "the CLI's API calls are counted")
	before := apiBefore
	for range 5 {
		_, err := jwJS.AccountInfo(ctx)
		require.NoError(t, err)
	}
	mark(1)
	require.Equal(t, before+1, apiBefore, "jetwatch's own excluded: only the mark is counted")
}

func TestDescribeAdvisoryNamesDataLoss(t *testing.T) {
	t.Parallel()
	e := describeAdvisory("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.c",
		[]byte(`{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"c","stream_seq":9,"reason":"Message deleted by stream limits"}`), time.Now())
	require.Equal(t, "data_loss", e.Kind)
	require.Equal(t, store.SeverityCritical, e.Severity)
	e = describeAdvisory("x", []byte(`{"type":"io.nats.jetstream.advisory.v1.stream_quorum_lost","stream":"S"}`), time.Now())
	require.Equal(t, store.SeverityCritical, e.Severity)
	e = describeAdvisory("x", []byte(`{"type":"io.nats.jetstream.advisory.v1.brand_new"}`), time.Now())
	require.Equal(t, "brand_new", e.Kind)
}

// A terminated message's reason is the client's text, of any length: the
// event keeps its start, says how long it was, and shows no control
// characters.
func TestATermReasonIsClipped(t *testing.T) {
	t.Parallel()
	reason := "bad\\u0007 order " + strings.Repeat("x", 100_000)
	e := describeAdvisory("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.c",
		[]byte(`{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"c","stream_seq":9,"reason":"`+reason+`"}`), time.Now())
	require.Equal(t, "terminated", e.Kind)
	require.Less(t, len(e.Summary), 1024)
	require.True(t, strings.HasPrefix(e.Summary, "message #9 of S terminated by consumer c: bad\ufffd order xxx"), e.Summary)
	require.True(t, strings.HasSuffix(e.Summary, "… (100011 bytes)"), e.Summary)
}

// Anyone in the account may publish naks and advisories: forged ones with
// hostile names or endless new kinds never add metric series without end,
// nor long names to the timeline.
func TestForgedNoiseAddsNoMetricSeries(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	jw := natstest.Connect(t, b.srv, nats.Name("jetwatch"))
	jwJS, err := jetstream.New(jw)
	require.NoError(t, err)
	require.NoError(t, EnsureStreams(ctx, jwJS, StreamsConfig{}))
	reg := prometheus.NewRegistry()
	tl, err := NewTimeline(jw, b.db, TimelineConfig{Registerer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, tl.Start(ctx))
	t.Cleanup(tl.Stop)

	forger := natstest.Connect(t, b.srv, nats.Name("forger"))
	long := strings.Repeat("S", 900)
	for i := range 50 {
		require.NoError(t, forger.Publish(fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.%s%d.c", long, i), nil))
		adv := fmt.Sprintf(`{"type":"io.nats.jetstream.advisory.v1.kind_%d","id":"f%d","stream":%q}`, i, i, long)
		require.NoError(t, forger.Publish("$JS.EVENT.ADVISORY.STREAM.UPDATED.X", []byte(adv)))
	}
	require.NoError(t, forger.Flush())
	series := func(name string) (n int, total float64) {
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == name {
				for _, m := range f.GetMetric() {
					n++
					total += m.GetCounter().GetValue()
				}
			}
		}
		return n, total
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, total := series("jetwatch_advisories_total"); total < 50 {
			return fmt.Errorf("%v advisories read", total)
		}
		if _, total := series("jetwatch_advisory_naks_total"); total < 50 {
			return fmt.Errorf("%v naks counted", total)
		}
		return nil
	})
	n, _ := series("jetwatch_advisory_naks_total")
	require.Equal(t, 1, n, "hostile names are counted together")
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "jetwatch_advisories_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					require.True(t, l.GetValue() == "other" || knownKinds[l.GetValue()], "kind %q is a series of its own", l.GetValue())
				}
			}
		}
	}
	events, err := b.db.Events(ctx, store.EventFilter{Limit: 100})
	require.NoError(t, err)
	for _, e := range events {
		require.Less(t, len(e.Stream), 200, "a forged name is clipped")
	}
}

// TestTimelineLeavesAPIAuditsAloneUnlessAsked: without CountAPICalls
// nobody subscribes to the API audit advisories, so the server does not
// write one for each of the sampler's calls; with it, the timeline does.
func TestTimelineLeavesAPIAuditsAloneUnlessAsked(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	acc := b.srv.GlobalAccount()
	const audits = "$JS.EVENT.ADVISORY.API"
	for _, count := range []bool{false, true} {
		conn := natstest.Connect(t, b.srv, nats.Name("jetwatch"))
		js, err := jetstream.New(conn)
		require.NoError(t, err)
		require.NoError(t, EnsureStreams(ctx, js, StreamsConfig{}))
		reg := prometheus.NewRegistry()
		tl, err := NewTimeline(conn, b.db, TimelineConfig{Registerer: reg, Logger: testLogger(t), CountAPICalls: count})
		require.NoError(t, err)
		require.NoError(t, tl.Start(ctx))
		require.NoError(t, conn.Flush())
		// The nak advisories are subscribed to either way: the server
		// has taken the timeline's subscriptions when it has that one.
		require.True(t, acc.SubscriptionInterest("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.c"))
		require.Equal(t, count, acc.SubscriptionInterest(audits), "interest in API audits with CountAPICalls %v", count)
		tl.Stop()
		conn.Close()
		natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if acc.SubscriptionInterest(audits) {
				return errors.New("the stopped timeline's subscription is still there")
			}
			return nil
		})
	}
}

// TestTimelineKeepsWhatItsStreamHolds: advisories flooding in (here from
// a forger, one of them half a megabyte) cannot grow the index past the
// advisory stream's own limits: the timeline drops the events whose
// advisories the stream no longer holds, and keeps an oversized advisory
// as a note of its size.
func TestTimelineKeepsWhatItsStreamHolds(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	jw := natstest.Connect(t, b.srv, nats.Name("jetwatch"))
	jwJS, err := jetstream.New(jw)
	require.NoError(t, err)
	// The operator bounds the advisory stream by count; EnsureStreams
	// leaves an existing stream's limits alone.
	cfg := StreamsConfig{}.withDefaults()
	_, err = jwJS.CreateStream(ctx, jetstream.StreamConfig{Name: cfg.Advisories, Subjects: advisorySubjects, MaxMsgs: 5})
	require.NoError(t, err)
	require.NoError(t, EnsureStreams(ctx, jwJS, StreamsConfig{}))
	tl, err := NewTimeline(jw, b.db, TimelineConfig{Logger: testLogger(t), TrimEvery: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, tl.Start(ctx))
	t.Cleanup(tl.Stop)

	forger := natstest.Connect(t, b.srv, nats.Name("forger"))
	huge := strings.Repeat("x", 512<<10)
	for i := range 12 {
		adv := fmt.Sprintf(`{"type":"io.nats.jetstream.advisory.v1.stream_action","id":"f%d","stream":"S%d","action":"create"}`, i, i)
		if i == 10 {
			adv = fmt.Sprintf(`{"type":"io.nats.jetstream.advisory.v1.stream_action","id":"f%d","stream":"S%d","pad":%q}`, i, i, huge)
		}
		require.NoError(t, forger.Publish(fmt.Sprintf("$JS.EVENT.ADVISORY.STREAM.CREATED.S%d", i), []byte(adv)))
	}
	require.NoError(t, forger.Flush())
	// The stream holds the last 5 advisories (the forger's, and maybe the
	// server's own about jetwatch's reader among them); the timeline ends
	// up with those it stores of them, and nothing older.
	stream, err := jwJS.Stream(ctx, cfg.Advisories)
	require.NoError(t, err)
	var large uint64
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		events, err := b.db.Events(ctx, store.EventFilter{Limit: 100})
		if err != nil {
			return err
		}
		if len(events) == 0 || events[0].Stream != "S11" {
			return fmt.Errorf("the last forged advisory is not stored yet: %v", events)
		}
		for _, e := range events {
			if e.ID < info.State.FirstSeq {
				return fmt.Errorf("event %d is older than the stream's first advisory %d", e.ID, info.State.FirstSeq)
			}
			if e.Stream == "S10" {
				large = e.ID
			}
		}
		// Every forged advisory the stream holds is an event (the server's
		// own about jetwatch's streams and readers are not).
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(m.Subject, "$JS.EVENT.ADVISORY.STREAM.CREATED.S") {
				continue
			}
			found := false
			for _, e := range events {
				found = found || e.ID == seq
			}
			if !found {
				return fmt.Errorf("advisory %d (%s) is not an event yet", seq, m.Subject)
			}
		}
		return nil
	})
	require.NotZero(t, large)
	var size int
	require.NoError(t, b.db.SQLForTests().QueryRowContext(ctx, `SELECT length(data) FROM events WHERE id = ?`, large).Scan(&size))
	require.Less(t, size, 2048, "a large advisory is kept as a note of its size")
	var note struct {
		Truncated bool   `json:"jetwatch_truncated"`
		Size      int    `json:"size"`
		Head      string `json:"head"`
	}
	var data string
	require.NoError(t, b.db.SQLForTests().QueryRowContext(ctx, `SELECT data FROM events WHERE id = ?`, large).Scan(&data))
	require.NoError(t, json.Unmarshal([]byte(data), &note))
	require.True(t, note.Truncated)
	require.Greater(t, note.Size, 512<<10)
	require.True(t, strings.HasPrefix(note.Head, `{"type":"io.nats.jetstream.advisory.v1.stream_action"`), note.Head)

	// Trimming again removes nothing more.
	n, err := tl.Trim(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
