package collector

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// TestConsumerInfoReadsWhatJetStreamSays: the sampler's lean decoding of a
// consumer gives the index the same consumer as decoding nats.go's whole
// ConsumerInfo did, and keeps the config exactly as the server sent it.
func TestConsumerInfoReadsWhatJetStreamSays(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	for range 5 {
		_, err := js.Publish(ctx, "orders.new", []byte("x"))
		require.NoError(t, err)
	}
	_, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "worker", Description: "takes orders", DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 7,
		BackOff:        []time.Duration{time.Second, 5 * time.Second},
		FilterSubjects: []string{"orders.new", "orders.paid"}, MaxAckPending: 100,
		InactiveThreshold: time.Hour, Metadata: map[string]string{"team": "shop"},
	})
	require.NoError(t, err)
	_, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "mirror", DeliverSubject: "deliver.mirror",
		FilterSubject: "orders.new", AckPolicy: jetstream.AckNonePolicy, ReplayPolicy: jetstream.ReplayOriginalPolicy})
	require.NoError(t, err)
	_, err = js.PauseConsumer(ctx, "ORDERS", "mirror", time.Now().Add(time.Hour))
	require.NoError(t, err)

	for _, name := range []string{"worker", "mirror"} {
		msg, err := nc.Request("$JS.API.CONSUMER.INFO.ORDERS."+name, nil, time.Second)
		require.NoError(t, err)
		var whole jetstream.ConsumerInfo
		require.NoError(t, json.Unmarshal(msg.Data, &whole))
		var lean consumerInfo
		require.NoError(t, json.Unmarshal(msg.Data, &lean))
		require.NoError(t, newSettingsCache().resolve("ORDERS", &lean))

		at := time.Now().UTC()
		got := consumerFromInfo(&lean, at)
		want := consumerFromWhole(&whole, at)
		require.JSONEq(t, string(want.Config), string(got.Config), name)
		got.Config, want.Config = nil, nil
		require.Equal(t, want, got, name)
		require.Equal(t, whole.Config.InactiveThreshold, lean.Config.InactiveThreshold, name)

		var answer struct {
			Config json.RawMessage `json:"config"`
		}
		require.NoError(t, json.Unmarshal(msg.Data, &answer))
		require.Equal(t, string(answer.Config), string(lean.Config.Raw), "the config is stored as the server sent it")
	}
}

// consumerFromWhole is consumerFromInfo by way of nats.go's ConsumerInfo:
// what the sampler stored before it decoded consumers itself.
func consumerFromWhole(info *jetstream.ConsumerInfo, at time.Time) store.Consumer {
	raw, err := json.Marshal(info.Config)
	if err != nil {
		panic(err)
	}
	lean := consumerInfo{Stream: info.Stream, Name: info.Name, Created: info.Created, Delivered: info.Delivered, AckFloor: info.AckFloor,
		NumAckPending: info.NumAckPending, NumRedelivered: info.NumRedelivered, NumWaiting: info.NumWaiting,
		NumPending: info.NumPending, Cluster: info.Cluster, PushBound: info.PushBound, TimeStamp: info.TimeStamp,
		Paused: info.Paused, PauseRemaining: info.PauseRemaining}
	cfg := info.Config
	lean.Config.consumerSettings = consumerSettings{Durable: cfg.Durable, Description: cfg.Description,
		DeliverPolicy: cfg.DeliverPolicy, AckPolicy: cfg.AckPolicy, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver,
		BackOff: cfg.BackOff, FilterSubject: cfg.FilterSubject, FilterSubjects: cfg.FilterSubjects,
		ReplayPolicy: cfg.ReplayPolicy, MaxAckPending: cfg.MaxAckPending, DeliverSubject: cfg.DeliverSubject,
		InactiveThreshold: cfg.InactiveThreshold, PauseUntil: cfg.PauseUntil}
	lean.Config.Raw = raw
	return consumerFromInfo(&lean, at)
}

// TestSamplerShowsAChangedConsumerConfig: a consumer's settings are decoded
// again when its config changes, and kept while it does not.
func TestSamplerShowsAChangedConsumerConfig(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	cfg := jetstream.ConsumerConfig{Durable: "billing", Description: "first", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 5}
	_, err = stream.CreateOrUpdateConsumer(ctx, cfg)
	require.NoError(t, err)

	for _, want := range []struct {
		description string
		maxDeliver  int
		carried     bool // the cycle carries the config to the index
	}{{"first", 5, true}, {"first", 5, false}, {"second", 9, true}, {"second", 9, false}} {
		cfg.Description, cfg.MaxDeliver = want.description, want.maxDeliver
		_, err := stream.CreateOrUpdateConsumer(ctx, cfg)
		require.NoError(t, err)
		b.clock.Advance(time.Second)
		cycle, err := s.SampleOnce(ctx)
		require.NoError(t, err)
		require.Len(t, cycle.Consumers, 1)
		require.Equal(t, want.carried, cycle.Consumers[0].Config != nil)
		c, err := b.db.Consumer(ctx, "ORDERS", "billing")
		require.NoError(t, err)
		require.Equal(t, want.description, c.Description)
		require.Equal(t, want.maxDeliver, c.MaxDeliver)
		require.Contains(t, string(c.Config), `"description":"`+want.description+`"`)
	}
	require.Len(t, s.settings.byStream["ORDERS"], 1, "one consumer, one set of settings")
	// Cycles that carried no config still recorded their history point.
	hist, err := b.db.ConsumerHistory(ctx, "ORDERS", "billing", b.clock.Now().Add(-time.Minute), b.clock.Now(), 100)
	require.NoError(t, err)
	require.Len(t, hist, 4)

	require.NoError(t, stream.DeleteConsumer(ctx, "billing"))
	b.clock.Advance(time.Second)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, s.settings.byStream, "a deleted consumer's settings are forgotten")
}

// TestSettingsCacheHoldsOnlyWhatACycleTook: an unchanged config is dropped
// only for a consumer the last cycle took in; one resolved and then left
// out (its stream deleted meanwhile) carries its config again.
func TestSettingsCacheHoldsOnlyWhatACycleTook(t *testing.T) {
	t.Parallel()
	c := newSettingsCache()
	read := func() *consumerInfo {
		info := &consumerInfo{Name: "c", Config: consumerConfig{Raw: json.RawMessage(`{"durable_name":"c","max_deliver":5}`)}}
		require.NoError(t, c.resolve("S", info))
		require.Equal(t, 5, info.Config.MaxDeliver)
		return info
	}
	require.NotNil(t, read().Config.Raw, "new: carried")
	c.touch("S", "c")
	c.endCycle()
	require.Nil(t, read().Config.Raw, "unchanged and stored: left out")
	c.endCycle() // the cycle left it out
	require.NotNil(t, read().Config.Raw, "forgotten: carried again")
}

// TestSettingsKeyCoversEveryField: settings that differ in any field have
// different keys, so consumers share settings only when they are equal.
func TestSettingsKeyCoversEveryField(t *testing.T) {
	base := consumerSettings{}
	seen := map[string]string{settingsKey(&base): "zero"}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		s := consumerSettings{}
		fv := reflect.ValueOf(&s).Elem().Field(i)
		fv = reflect.NewAt(fv.Type(), fv.Addr().UnsafePointer()).Elem() // unexported fields too
		switch fv.Kind() {
		case reflect.String:
			fv.SetString("x")
		case reflect.Int, reflect.Int64:
			fv.SetInt(3)
		case reflect.Bool:
			fv.SetBool(true)
		case reflect.Slice:
			fv.Set(reflect.MakeSlice(fv.Type(), 1, 1))
		case reflect.Pointer:
			fv.Set(reflect.New(fv.Type().Elem()))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", f.Name, fv.Kind())
		}
		k := settingsKey(&s)
		if other, dup := seen[k]; dup {
			t.Fatalf("settings with only %s set have the key of %s: %q", f.Name, other, k)
		}
		seen[k] = f.Name
	}
	// Two strings' boundary cannot move between fields.
	a := consumerSettings{Description: "a", FilterSubject: "bc"}
	b := consumerSettings{Description: "ab", FilterSubject: "c"}
	require.NotEqual(t, settingsKey(&a), settingsKey(&b))
}

// TestSettingsAreSharedAndForgotten: consumers set up alike share one copy
// of their settings, which goes when the last of them does.
func TestSettingsAreSharedAndForgotten(t *testing.T) {
	c := newSettingsCache()
	cfg := func(durable, desc string) *consumerInfo {
		return &consumerInfo{Name: durable, Config: consumerConfig{Raw: json.RawMessage(
			`{"durable_name":"` + durable + `","description":"` + desc + `","ack_policy":"explicit","max_deliver":5}`)}}
	}
	for _, name := range []string{"a", "b", "c"} {
		info := cfg(name, "same")
		require.NoError(t, c.resolve("S", info))
		require.True(t, info.Config.durable)
		require.Equal(t, 5, info.Config.MaxDeliver)
		c.touch("S", name)
	}
	require.Len(t, c.shared, 1, "three consumers set up alike share their settings")
	require.Equal(t, 3, c.byStream["S"]["a"].settings.refs)
	info := cfg("c", "other")
	require.NoError(t, c.resolve("S", info))
	require.Equal(t, "other", info.Config.Description)
	c.touch("S", "c")
	require.Len(t, c.shared, 2)
	require.Equal(t, 2, c.byStream["S"]["a"].settings.refs)
	c.endCycle()
	// The next cycle sees only a: b and c are gone, and so are the
	// settings only c used.
	again := cfg("a", "same")
	require.NoError(t, c.resolve("S", again))
	require.Nil(t, again.Config.Raw, "an unchanged config is not carried again")
	require.Equal(t, "same", again.Config.Description)
	c.touch("S", "a")
	c.endCycle()
	require.Len(t, c.shared, 1)
	require.Equal(t, 1, c.byStream["S"]["a"].settings.refs)
	c.touch("S", "nobody")
	c.endCycle()
	require.Empty(t, c.shared, "settings no consumer uses are forgotten")
	require.Empty(t, c.byStream)
}
