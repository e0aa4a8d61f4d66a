package collector

import (
	"context"
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
	apiBefore := got["jetwatch_jetstream_api_calls_total"]
	require.Positive(t, apiBefore, "the CLI's API calls are counted")
	for range 5 {
		_, err := jwJS.AccountInfo(ctx)
		require.NoError(t, err)
	}
	_, err = js.AccountInfo(ctx)
	require.NoError(t, err)
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		families, err := reg.Gather()
		if err != nil {
			return err
		}
		var n float64
		for _, f := range families {
			if f.GetName() == "jetwatch_jetstream_api_calls_total" {
				for _, m := range f.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		if n != apiBefore+1 {
			return fmt.Errorf("api calls %v, want %v (jetwatch's own excluded)", n, apiBefore+1)
		}
		return nil
	})
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
