package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// TestForgedAdvisoriesAreRejectedAndShown runs serve against a real
// server while a client forges advisories: nothing reaches the DLQ, the
// rejections are on the events page, the API and /metrics, and the
// connection survives for the next real failure.
func TestForgedAdvisoriesAreRejectedAndShown(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	data := t.TempDir() // before the shutdown cleanup: removed after it
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--server", srv.ClientURL(),
			"--capture-streams", "ORDERS,PAY*", "--log-level", "warn"}, func(string) string { return "" }, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	var base string
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		m := dashboardLine.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("not serving yet: %s", out.String())
		}
		base = m[1]
		return nil
	})

	ctx = context.Background()
	cli := natstest.Connect(t, srv, nats.Name("orders-service"))
	js, err := jetstream.New(cli)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "orders.created", []byte(`{"card":"4111111111111111"}`))
	require.NoError(t, err)
	cons, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing",
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, AckWait: 500 * time.Millisecond})
	require.NoError(t, err)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := js.Stream(ctx, collector.DefaultDLQStream)
		return err // jetwatch's streams exist: the bridge runs
	})

	forged := []string{
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"ORDERS","consumer":"billing","stream_seq":1,"deliveries":2}`,
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"KV_jetwatch_tokens","consumer":"c","stream_seq":1,"deliveries":2}`,
		`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"` + strings.Repeat("P", 5000) + `","consumer":"c","stream_seq":1,"deliveries":2}`,
	}
	for _, f := range forged {
		require.NoError(t, cli.Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.billing", []byte(f)))
	}
	var events struct {
		Items []struct{ Kind, Stream, Consumer, Summary string }
	}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		events.Items = nil
		getJSON(t, base+"/api/v1/events?kind=advisory_rejected", &events)
		if len(events.Items) < len(forged) {
			return fmt.Errorf("%d rejections shown, want %d", len(events.Items), len(forged))
		}
		return nil
	})
	summaries := ""
	for _, e := range events.Items {
		summaries += e.Summary + "\n"
		require.Less(t, len(e.Stream), 300)
	}
	require.Contains(t, summaries, "advisory rejected (not_delivered): max_deliver advisory for #1 of ORDERS, but consumer billing has delivered only up to #0")
	require.Contains(t, summaries, "advisory rejected (protected_stream)")
	require.Contains(t, summaries, "advisory rejected (invalid_name)")

	res, page := httpGet(t, base+"/events?kind=advisory_rejected")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, len(forged), strings.Count(page, `data-testid="event-row"`))
	require.Contains(t, page, "advisory rejected (not_delivered)")
	_, metrics := httpGet(t, base+"/metrics")
	require.Contains(t, metrics, `jetwatch_bridge_advisories_rejected_total{reason="not_delivered"} 1`)
	require.Contains(t, metrics, `jetwatch_bridge_advisories_rejected_total{reason="protected_stream"} 1`)
	require.Contains(t, metrics, `jetwatch_bridge_advisories_rejected_total{reason="invalid_name"} 1`)
	dlqStream, err := js.Stream(ctx, collector.DefaultDLQStream)
	require.NoError(t, err)
	require.Zero(t, dlqStream.CachedInfo().State.Msgs, "no forged advisory copied a message")

	// The connection is up: /readyz says so, and a real failure is bridged.
	res, _ = httpGet(t, base+"/readyz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for range 2 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		for range batch.Messages() { // not acked
		}
	}
	_, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second)) // the pull that trips MaxDeliver
	require.NoError(t, err)
	var dead struct {
		Items []struct {
			Stream, Consumer string
			PayloadAvailable bool `json:"payload_available"`
		}
	}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		getJSON(t, base+"/api/v1/dead-letters", &dead)
		if len(dead.Items) != 1 {
			return fmt.Errorf("%d dead letters, want 1", len(dead.Items))
		}
		return nil
	})
	require.Equal(t, "ORDERS", dead.Items[0].Stream)
	require.Equal(t, "billing", dead.Items[0].Consumer)
	require.True(t, dead.Items[0].PayloadAvailable)
}

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}
