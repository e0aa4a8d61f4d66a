package collector

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// teamsConfig has jetwatch's account APP, two more with JetStream (TEAM,
// IDLE with nothing in it) and the system account, whose user has only
// the permissions README gives it.
const teamsConfig = `
accounts {
  APP { jetstream: enabled, users: [{user: app, password: app}] }
  TEAM { jetstream: enabled, users: [{user: team, password: team}] }
  IDLE { jetstream: enabled, users: [{user: idle, password: idle}] }
  SYS { users: [{user: sys, password: sys, permissions: {
    publish: ["$SYS.REQ.SERVER.PING.JSZ", "$SYS.REQ.USER.INFO"], subscribe: ["_INBOX.>"]}}] }
}
system_account: SYS
no_auth_user: app
`

func TestSamplerReadsEveryAccountThroughTheSystemAccount(t *testing.T) {
	t.Parallel()
	_, b := setup(t, natstest.WithAccounts(t, teamsConfig))
	ctx := context.Background()

	// The same stream name in two accounts: two streams, never mixed up.
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	publish(t, b.js, "orders.created", 1)

	team := natstest.Connect(t, b.srv, nats.UserInfo("team", "team"))
	tjs, err := jetstream.New(team)
	require.NoError(t, err)
	_, err = tjs.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 10, Discard: jetstream.DiscardNew})
	require.NoError(t, err)
	publish(t, tjs, "orders.created", 5)
	cons, err := tjs.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", Description: "bills \"orders\"", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx))
	}

	sys := natstest.Connect(t, b.srv, nats.UserInfo("sys", "sys"))
	reg := prometheus.NewRegistry()
	s, err := NewSampler(b.nc, b.db, SamplerConfig{SystemConn: sys, AllAccounts: true, Logger: testLogger(t),
		Registerer: reg, Now: b.clock.Now, Interval: time.Second, JSZTimeout: time.Second})
	require.NoError(t, err)
	cycle, err := s.SampleOnce(ctx)
	require.NoError(t, err)

	// jetwatch's own account is sampled in depth, as always, and only it
	// is stored.
	require.Len(t, cycle.Streams, 1)
	require.Equal(t, uint64(1), cycle.Streams[0].Messages)
	stored, err := b.db.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	require.Equal(t, uint64(1), stored.Messages)

	state := s.State()
	require.Empty(t, state.AccountsNote)
	require.Len(t, state.Accounts, 2, "TEAM and IDLE; not APP (jetwatch's own) nor SYS (no JetStream)")
	idle, acc := state.Accounts[0], state.Accounts[1]
	require.Equal(t, "IDLE", idle.Name)
	require.Empty(t, idle.Streams)
	require.Equal(t, store.HealthOK, idle.Health.Level)

	require.Equal(t, "TEAM", acc.Name)
	require.Nil(t, acc.Unread)
	require.Len(t, acc.Streams, 1)
	st := acc.Streams[0]
	require.Equal(t, "ORDERS", st.Name)
	require.Equal(t, uint64(5), st.Messages)
	require.Equal(t, int64(10), st.Limits.MaxMsgs)
	require.NotNil(t, st.Limits.MsgsUsedPct)
	require.InDelta(t, 50, *st.Limits.MsgsUsedPct, 0.01)
	require.Len(t, acc.Consumers, 1)
	c := acc.Consumers[0]
	require.Equal(t, "ORDERS", c.Stream)
	require.Equal(t, "billing", c.Name)
	require.Equal(t, uint64(3), c.NumPending)
	require.Equal(t, uint64(2), c.AckFloor.StreamSeq)
	require.True(t, c.Durable)
	require.Equal(t, "explicit", c.AckPolicy)
	require.NotEmpty(t, c.LagState, "other accounts' lag is judged too")
	require.Nil(t, c.Config, "not kept in memory")

	// Both accounts' ORDERS are on /metrics, told apart by the account.
	families := scrapeWith(t, s, reg, false)
	require.Equal(t, 1.0, gaugeValue(t, families, "jetstream_stream_total_messages", map[string]string{"account": "APP", "stream_name": "ORDERS"}))
	require.Equal(t, 5.0, gaugeValue(t, families, "jetstream_stream_total_messages", map[string]string{"account": "TEAM", "account_id": "TEAM", "stream_name": "ORDERS"}))
	require.Equal(t, 3.0, gaugeValue(t, families, "jetstream_consumer_num_pending", map[string]string{"account": "TEAM", "stream_name": "ORDERS", "consumer_name": "billing", "consumer_desc": `bills "orders"`}))
	require.InDelta(t, 0.5, gaugeValue(t, families, "jetwatch_stream_limit_used_ratio", map[string]string{"account": "TEAM", "stream_name": "ORDERS", "limit": "messages", "discard": "new"}), 0.001)

	require.Zero(t, st.InPerSec, "no rate from a first sample")

	// The next cycle derives rates from the one before, as for jetwatch's
	// own: 4 messages and 2 acks in 2 seconds.
	publish(t, tjs, "orders.created", 4)
	batch, err = cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx))
	}
	b.clock.Advance(2 * time.Second)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	acc = s.State().Accounts[1]
	require.InDelta(t, 2.0, acc.Streams[0].InPerSec, 0.001)
	require.Positive(t, acc.Streams[0].BytesInPerSec)
	require.InDelta(t, 1.0, acc.Consumers[0].DeliveredPerSec, 0.001)
	require.InDelta(t, 1.0, acc.Consumers[0].AckedPerSec, 0.001)

	// A consumer deleted in TEAM is gone from the next cycle.
	require.NoError(t, tjs.DeleteConsumer(ctx, "ORDERS", "billing"))
	b.clock.Advance(time.Second)
	_, err = s.SampleOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, s.State().Accounts[1].Consumers)
	require.NotContains(t, s.accountLag["TEAM"].prev, "ORDERS\x00billing", "nor its counts")
	require.Empty(t, s.accountLag["TEAM"].lag.windows, "the lag window of a consumer gone is forgotten")
}

func TestSamplerSaysWhyOtherAccountsCannotBeRead(t *testing.T) {
	t.Parallel()
	_, b := setup(t, natstest.WithAccounts(t, teamsConfig))
	ctx := context.Background()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	require.NoError(t, err)

	// The app user is not in the system account: JSZ has no responders.
	s, err := NewSampler(b.nc, b.db, SamplerConfig{AllAccounts: true, Logger: testLogger(t), Now: b.clock.Now, JSZTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	cycle, err := s.SampleOnce(ctx)
	require.NoError(t, err)
	require.Len(t, cycle.Streams, 1, "its own account is sampled regardless")
	state := s.State()
	require.Nil(t, state.Accounts)
	require.Contains(t, state.AccountsNote, "other accounts cannot be read")
	require.Contains(t, state.AccountsNote, "--system-creds")
}
