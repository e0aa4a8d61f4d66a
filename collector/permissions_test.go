package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// TestREADMEPermissionsStopForgedAdvisories runs a server with the
// README's permissions snippet: a service user cannot publish an
// advisory, and jetwatch's user still captures and bridges real ones.
func TestREADMEPermissionsStopForgedAdvisories(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	snippet := regexp.MustCompile("(?s)```\n(accounts \\{.*?\n\\})\n```").FindSubmatch(readme)
	require.NotNil(t, snippet, "README shows an accounts block")
	conf := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(conf, append([]byte("jetstream {}\n"), snippet[1]...), 0o600))
	t.Setenv("ORDERS_PASSWORD", "orders-secret")
	t.Setenv("JETWATCH_PASSWORD", "jetwatch-secret")
	opts, err := server.ProcessConfigFile(conf)
	require.NoError(t, err)
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog = "127.0.0.1", -1, t.TempDir(), true
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	require.True(t, srv.ReadyForConnections(10*time.Second))

	ctx := context.Background()
	jw, err := nats.Connect(srv.ClientURL(), nats.UserInfo("jetwatch", "jetwatch-secret"), nats.Name("jetwatch"))
	require.NoError(t, err)
	t.Cleanup(jw.Close)
	bridge, err := NewBridge(jw, BridgeConfig{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, bridge.Start(ctx))
	t.Cleanup(bridge.Stop)

	denied := make(chan error, 1)
	orders, err := nats.Connect(srv.ClientURL(), nats.UserInfo("orders", "orders-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case denied <- err:
			default:
			}
		}))
	require.NoError(t, err)
	t.Cleanup(orders.Close)
	js, err := jetstream.New(orders)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "orders.created", []byte(`{"order_id":"ord-1"}`))
	require.NoError(t, err)

	require.NoError(t, orders.Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.forged",
		[]byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"ORDERS","consumer":"forged","stream_seq":1,"deliveries":1}`)))
	select {
	case err := <-denied:
		require.ErrorIs(t, err, nats.ErrPermissionViolation)
	case <-time.After(5 * time.Second):
		t.Fatal("publishing an advisory was not refused")
	}

	// A real failure still reaches the DLQ through jetwatch's user.
	cons, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	fail(t, cons, func(m jetstream.Msg) error { return m.TermWithReason("declined") })
	jwJS, err := jetstream.New(jw)
	require.NoError(t, err)
	dlqStream, err := jwJS.Stream(ctx, DefaultDLQStream)
	require.NoError(t, err)
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		info, err := dlqStream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 1 {
			return fmt.Errorf("DLQ holds %d dead letters, want 1", info.State.Msgs)
		}
		return nil
	})
	m, err := dlqStream.GetLastMsgForSubject(ctx, "dlq.ORDERS.billing")
	require.NoError(t, err)
	require.Equal(t, []byte(`{"order_id":"ord-1"}`), m.Data)
	adv, err := jwJS.Stream(ctx, DefaultAdvisoryStream)
	require.NoError(t, err)
	info, err := adv.Info(ctx, jetstream.WithSubjectFilter("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"))
	require.NoError(t, err)
	require.Empty(t, info.State.Subjects, "the forged advisory never reached the capture stream")
}
