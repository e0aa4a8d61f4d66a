package collector

import (
	"context"
	"errors"
	"fmt"
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
	tl, err := NewTimeline(jwConn, b.db, TimelineConfig{Registerer: reg, Logger: testLogger(t)})
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
