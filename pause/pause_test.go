package pause

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

type bundle struct {
	js  jetstream.JetStream
	ctx context.Context
}

func setup(t *testing.T) (*Consumers, *bundle) {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "ORDERS", Subjects: []string{"orders.>"}},
		{Name: "DLQ", Subjects: []string{"dlq.>"}},
		{Name: "KV_prices", Subjects: []string{"$KV.prices.>"}},
	} {
		_, err := js.CreateStream(ctx, sc)
		require.NoError(t, err)
	}
	for _, cc := range []struct{ stream, name string }{
		{"ORDERS", "billing"}, {"ORDERS", "jetwatch-probe"}, {"DLQ", "replayer"}, {"KV_prices", "watcher"},
	} {
		_, err := js.CreateConsumer(ctx, cc.stream, jetstream.ConsumerConfig{Durable: cc.name, AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
	}
	return New(js, Config{OwnStreams: []string{"DLQ"}}), &bundle{js: js, ctx: ctx}
}

// info is the consumer as the server tells it.
func (b *bundle) info(t *testing.T, stream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.js.Consumer(b.ctx, stream, name)
	require.NoError(t, err)
	return c.CachedInfo()
}

func TestPauseAndResumeShowInTheServersConsumerInfo(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	until := time.Now().Add(time.Hour).Truncate(time.Second)

	st, err := p.Pause(b.ctx, "ORDERS", "billing", until)
	require.NoError(t, err)
	require.True(t, st.Paused)
	require.NotNil(t, st.PauseUntil)
	require.True(t, until.Equal(*st.PauseUntil), "%s != %s", until, st.PauseUntil)
	require.InDelta(t, time.Hour.Seconds(), st.PauseRemaining, 60)
	info := b.info(t, "ORDERS", "billing")
	require.True(t, info.Paused)
	require.NotNil(t, info.Config.PauseUntil)
	require.True(t, until.Equal(*info.Config.PauseUntil))

	st, err = p.Resume(b.ctx, "ORDERS", "billing")
	require.NoError(t, err)
	require.False(t, st.Paused)
	require.Nil(t, st.PauseUntil)
	require.False(t, b.info(t, "ORDERS", "billing").Paused)

	// Resuming one that is not paused changes nothing, and says so.
	st, err = p.Resume(b.ctx, "ORDERS", "billing")
	require.NoError(t, err)
	require.False(t, st.Paused)
}

func TestPauseRefusesWhatItMustNotDoAndChangesNothing(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	now := time.Now()
	for name, tc := range map[string]struct {
		stream, consumer string
		until            time.Time
		want             error
		says             string
	}{
		"past":            {"ORDERS", "billing", now.Add(-time.Minute), ErrInvalid, "not in the future"},
		"now":             {"ORDERS", "billing", now.Add(-time.Millisecond), ErrInvalid, "not in the future"},
		"too far":         {"ORDERS", "billing", now.Add(31 * 24 * time.Hour), ErrInvalid, "at most 30 days"},
		"own consumer":    {"ORDERS", "jetwatch-probe", now.Add(time.Hour), ErrRefused, "jetwatch's own"},
		"own stream":      {"DLQ", "replayer", now.Add(time.Hour), ErrRefused, "jetwatch's or NATS's own"},
		"kv stream":       {"KV_prices", "watcher", now.Add(time.Hour), ErrRefused, "KV_*"},
		"jetwatch stream": {"JETWATCH_ADVISORIES", "x", now.Add(time.Hour), ErrRefused, "own records"},
		"long name":       {"ORDERS", strings.Repeat("b", 5000), now.Add(time.Hour), ErrInvalid, "consumer"},
		"control char":    {"ORDERS\x00", "billing", now.Add(time.Hour), ErrInvalid, "stream"},
		"wildcard":        {"ORDERS", "bill.*", now.Add(time.Hour), ErrInvalid, "consumer"},
		"no stream":       {"NOPE", "billing", now.Add(time.Hour), ErrNotFound, "no stream NOPE"},
		"no consumer":     {"ORDERS", "nobody", now.Add(time.Hour), ErrNotFound, "has no consumer nobody"},
	} {
		_, err := p.Pause(b.ctx, tc.stream, tc.consumer, tc.until)
		require.ErrorIs(t, err, tc.want, name)
		require.Contains(t, err.Error(), tc.says, name)
	}
	_, err := p.Resume(b.ctx, "KV_prices", "watcher")
	require.ErrorIs(t, err, ErrRefused)
	_, err = p.Resume(b.ctx, "ORDERS", "nobody")
	require.ErrorIs(t, err, ErrNotFound)

	// Nothing was paused, and the connection is still up.
	require.True(t, b.js.Conn().IsConnected())
	for _, c := range [][2]string{{"ORDERS", "billing"}, {"ORDERS", "jetwatch-probe"}, {"DLQ", "replayer"}, {"KV_prices", "watcher"}} {
		require.False(t, b.info(t, c[0], c[1]).Paused, c)
	}
	_, err = b.js.Consumer(b.ctx, "ORDERS", "nobody")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "a pause of an unknown consumer creates none")
}

func TestPauseWithoutNATSSaysNothingChanged(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	b.js.Conn().Close()
	_, err := p.Pause(b.ctx, "ORDERS", "billing", time.Now().Add(time.Hour))
	require.ErrorIs(t, err, ErrNotConnected)
	_, err = p.Resume(b.ctx, "ORDERS", "billing")
	require.ErrorIs(t, err, ErrNotConnected)
}

// A JetStream API that takes the request and never answers: the change
// may or may not have been made, and the error says to look and ask
// again. Without any JetStream, nothing could have changed.
func TestPauseWithoutAnAnswerSaysToCheckAndRetry(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t, func(o *server.Options) { o.JetStream = false })
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	p := New(js, Config{Timeout: 200 * time.Millisecond})
	ctx := context.Background()

	_, err = p.Pause(ctx, "ORDERS", "billing", time.Now().Add(time.Hour))
	require.ErrorIs(t, err, ErrNotConnected, "no JetStream answers: nothing changed")

	asked := make(chan string, 4)
	sub, err := nc.Subscribe("$JS.API.CONSUMER.PAUSE.>", func(m *nats.Msg) { asked <- m.Subject })
	require.NoError(t, err)
	t.Cleanup(func() { sub.Unsubscribe() }) //nolint:errcheck // the server goes too
	require.NoError(t, nc.Flush())
	_, err = p.Pause(ctx, "ORDERS", "billing", time.Now().Add(time.Hour))
	require.ErrorIs(t, err, ErrNoAnswer)
	require.Contains(t, err.Error(), "200ms")
	require.Equal(t, "$JS.API.CONSUMER.PAUSE.ORDERS.billing", <-asked)
	_, err = p.Resume(ctx, "ORDERS", "billing")
	require.ErrorIs(t, err, ErrNoAnswer)
	require.True(t, nc.IsConnected())
}
