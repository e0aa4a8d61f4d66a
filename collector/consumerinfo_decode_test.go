package collector

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// capturedAnswers are CONSUMER.LIST pages and CONSUMER.INFO answers as a
// real server writes them.
type capturedAnswers struct {
	lists [][]byte
	infos [][]byte
}

// consumerVariety is the config of the i-th consumer of a captured page:
// push and pull, filters, backoff, metadata, descriptions with quotes,
// backslashes, markup, non-ASCII and control characters, cycling.
func consumerVariety(i int) jetstream.ConsumerConfig {
	name := fmt.Sprintf("c%03d", i)
	switch i % 10 {
	case 0:
		return jetstream.ConsumerConfig{Durable: name, Description: "say \"hi\" \\ <b>bold</b> & ünïcödé 日本 \x01\x1f\ttab",
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
			MaxDeliver: 7, BackOff: []time.Duration{time.Second, 5 * time.Second},
			FilterSubjects: []string{"orders.new", "orders.paid"}, MaxAckPending: 100, InactiveThreshold: time.Hour,
			Metadata: map[string]string{"team": "shop", "quote": `"x" \ y`}}
	case 1:
		return jetstream.ConsumerConfig{Durable: name, DeliverSubject: "deliver." + name, FilterSubject: "orders.new",
			AckPolicy: jetstream.AckNonePolicy, ReplayPolicy: jetstream.ReplayOriginalPolicy}
	case 2:
		return jetstream.ConsumerConfig{Name: name, InactiveThreshold: time.Minute, AckPolicy: jetstream.AckAllPolicy,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 3}
	case 3:
		start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		return jetstream.ConsumerConfig{Durable: name, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
			AckPolicy: jetstream.AckExplicitPolicy, HeadersOnly: true, MaxRequestBatch: 10, MaxRequestExpires: time.Minute}
	case 4:
		return jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{"jobs"}, PinnedTTL: time.Minute}
	case 5:
		return jetstream.ConsumerConfig{Durable: name, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, FilterSubject: "orders.*",
			AckPolicy: jetstream.AckExplicitPolicy, Description: "ünïcödé → ✓"}
	case 6:
		return jetstream.ConsumerConfig{Durable: name, DeliverSubject: "deliver." + name, DeliverGroup: "q", AckPolicy: jetstream.AckExplicitPolicy,
			FlowControl: true, IdleHeartbeat: 5 * time.Second, RateLimit: 1 << 20}
	case 7:
		return jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 16, MemoryStorage: true,
			Replicas: 1, SampleFrequency: "50%"}
	case 8:
		return jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, PauseUntil: ptr(time.Now().Add(time.Hour))}
	default:
		return jetstream.ConsumerConfig{Durable: name, DeliverPolicy: jetstream.DeliverLastPolicy, AckPolicy: jetstream.AckNonePolicy}
	}
}

// captureConsumerAnswers starts a server, creates a stream with n
// consumers of consumerVariety, gives some of them work in progress
// (delivered, acked, redelivered, waiting, bound, paused) and captures the
// LIST pages and the INFO answer of each.
func captureConsumerAnswers(tb testing.TB, n int) capturedAnswers {
	tb.Helper()
	ns := natstest.RunServer(tb)
	nc := natstest.Connect(tb, ns)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	require.NoError(tb, err)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(tb, err)
	for i := range 20 {
		_, err := js.Publish(ctx, []string{"orders.new", "orders.paid"}[i%2], []byte("x"))
		require.NoError(tb, err)
	}
	var names []string
	for i := range n {
		cfg := consumerVariety(i)
		_, err := stream.CreateOrUpdateConsumer(ctx, cfg)
		require.NoError(tb, err)
		names = append(names, cmp.Or(cfg.Durable, cfg.Name))
	}

	// c000: delivered 5, acked 2, one nak'd and redelivered.
	worker, err := stream.Consumer(ctx, names[0])
	require.NoError(tb, err)
	batch, err := worker.Fetch(5, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(tb, err)
	i := 0
	for m := range batch.Messages() {
		switch i {
		case 0, 1:
			require.NoError(tb, m.Ack())
		case 2:
			require.NoError(tb, m.Nak())
		}
		i++
	}
	require.Equal(tb, 5, i)
	again, err := worker.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(tb, err)
	for range again.Messages() {
	}
	// c001: a push consumer someone is bound to.
	sub, err := nc.SubscribeSync("deliver." + names[1])
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	natstest.CheckFor(tb, 5*time.Second, 10*time.Millisecond, func() error {
		// nats.go's Consumer is for pull consumers only.
		msg, err := nc.Request("$JS.API.CONSUMER.INFO.ORDERS."+names[1], nil, 5*time.Second)
		if err != nil {
			return err
		}
		var info jetstream.ConsumerInfo
		if err := json.Unmarshal(msg.Data, &info); err != nil {
			return err
		}
		if !info.PushBound {
			return fmt.Errorf("%s not bound yet", names[1])
		}
		return nil
	})
	if n > 7 {
		// c007: a pull request waiting for messages (none are left for it).
		all, err := stream.Consumer(ctx, names[7])
		require.NoError(tb, err)
		taken, err := all.Fetch(20, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(tb, err)
		for range taken.Messages() {
		}
		inbox := nc.NewInbox()
		waiting, err := nc.SubscribeSync(inbox)
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = waiting.Unsubscribe() })
		require.NoError(tb, nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.ORDERS."+names[7], inbox,
			[]byte(`{"batch":1,"expires":60000000000}`)))
		natstest.CheckFor(tb, 5*time.Second, 10*time.Millisecond, func() error {
			info, err := all.Info(ctx)
			if err != nil {
				return err
			}
			if info.NumWaiting != 1 {
				return fmt.Errorf("%d waiting", info.NumWaiting)
			}
			return nil
		})
	}
	// c001 paused as well.
	_, err = js.PauseConsumer(ctx, "ORDERS", names[1], time.Now().Add(time.Hour))
	require.NoError(tb, err)

	var got capturedAnswers
	for offset := 0; offset < n; {
		msg, err := nc.Request("$JS.API.CONSUMER.LIST.ORDERS", fmt.Appendf(nil, `{"offset":%d}`, offset), 5*time.Second)
		require.NoError(tb, err)
		var p listPage[json.RawMessage]
		require.NoError(tb, json.Unmarshal(msg.Data, &p))
		require.NotEmpty(tb, p.Consumers)
		offset += len(p.Consumers)
		got.lists = append(got.lists, msg.Data)
	}
	for _, name := range names[:min(n, 10)] {
		msg, err := nc.Request("$JS.API.CONSUMER.INFO.ORDERS."+name, nil, 5*time.Second)
		require.NoError(tb, err)
		got.infos = append(got.infos, msg.Data)
	}
	// Not found: an answer with an error.
	msg, err := nc.Request("$JS.API.CONSUMER.INFO.ORDERS.nobody", nil, 5*time.Second)
	require.NoError(tb, err)
	got.infos = append(got.infos, msg.Data)
	msg, err = nc.Request("$JS.API.CONSUMER.LIST.NOSTREAM", nil, 5*time.Second)
	require.NoError(tb, err)
	got.lists = append(got.lists, msg.Data)
	// Not to compete with a benchmark for the CPU.
	nc.Close()
	ns.Shutdown()
	return got
}

// captureClusteredConsumerAnswers captures the LIST page and the INFO
// answers of n consumers of a stream of 3 replicas in a 3-node cluster.
func captureClusteredConsumerAnswers(tb testing.TB, n int) capturedAnswers {
	tb.Helper()
	c := natstest.RunCluster(tb, 3)
	nc, err := nats.Connect(c.URLs())
	require.NoError(tb, err)
	defer nc.Close()
	ctx := context.Background()
	js, err := jetstream.New(nc)
	require.NoError(tb, err)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
	require.NoError(tb, err)
	_, err = js.Publish(ctx, "orders.new", []byte("x"))
	require.NoError(tb, err)
	var names []string
	for i := range n {
		cfg := consumerVariety(i)
		_, err := stream.CreateOrUpdateConsumer(ctx, cfg)
		require.NoError(tb, err)
		names = append(names, cmp.Or(cfg.Durable, cfg.Name))
	}
	var got capturedAnswers
	// Until every replica reports in, and a leader says since when.
	natstest.CheckFor(tb, 20*time.Second, 50*time.Millisecond, func() error {
		msg, err := nc.Request("$JS.API.CONSUMER.LIST.ORDERS", nil, 5*time.Second)
		if err != nil {
			return err
		}
		var p listPage[*jetstream.ConsumerInfo]
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			return err
		}
		if len(p.Consumers) != n {
			return fmt.Errorf("%d consumers listed", len(p.Consumers))
		}
		for _, ci := range p.Consumers {
			// An ephemeral consumer has a single replica, as has c007.
			single := ci.Config.Durable == "" || ci.Config.Replicas == 1
			if ci.Cluster == nil || ci.Cluster.Leader == "" ||
				!single && (len(ci.Cluster.Replicas) != 2 || ci.Cluster.LeaderSince == nil) {
				return fmt.Errorf("consumer %s: cluster %+v", ci.Name, ci.Cluster)
			}
		}
		got.lists = [][]byte{msg.Data}
		return nil
	})
	for _, name := range names {
		msg, err := nc.Request("$JS.API.CONSUMER.INFO.ORDERS."+name, nil, 5*time.Second)
		require.NoError(tb, err)
		got.infos = append(got.infos, msg.Data)
	}
	nc.Close()
	for i := range c.Nodes {
		c.Stop(i)
	}
	return got
}

// clusterObject is a consumer's cluster as a clustered server writes it.
const clusterObject = `"cluster":{"name":"C1","raft_group":"C-R3F-aBcDeF","leader":"n1","leader_since":"2026-12-02T10:00:00.123456789Z",` +
	`"system_account":true,"traffic_account":"$SYS","replicas":[{"name":"n2","current":true,"active":1234567,"peer":"aBc"},` +
	`{"name":"n3","current":false,"offline":true,"active":987654321,"lag":12,"peer":"dEf"}]},`

// hostileVariants turn a captured answer into shapes the server does not
// write, most of which the fast path must leave to encoding/json: each
// replaces the first occurrence of old.
var hostileVariants = []struct {
	old, new string
	fast     bool // the fast path decodes it too
}{
	{`"name":`, `"NAME":`, false},
	{`"name":`, `"Name":`, false},
	{`"stream_name":`, `"ſtream_name":`, false},    // folds to stream_name
	{`"ack_floor":`, "\"ac\u212a_floor\":", false}, // a Kelvin sign folds to k
	{`"name":`, `"n\u0061me":`, false},
	{`"name":`, `"num_pending":5,"name":`, false},
	{`"name":`, `"name":"dup","name":`, false},
	{`"config":`, `"config":{},"config":`, false},
	{`"num_pending":`, `"num_pending":null,"x":`, false},
	{`"num_pending":`, `"num_pending":99999999999999999999999,"x":`, false},
	{`"num_pending":`, `"num_pending":18446744073709551615,"x":`, true},
	{`"num_waiting":`, `"num_waiting":9223372036854775808,"x":`, false},
	{`"num_waiting":`, `"num_waiting":1.0,"x":`, false},
	{`"num_waiting":`, `"num_waiting":1e3,"x":`, false},
	{`"num_waiting":`, `"num_waiting":-1,"x":`, false},
	{`"num_waiting":`, `"num_waiting":-0,"x":`, false},
	{`"num_waiting":`, `"num_waiting":01,"x":`, false},
	{`"num_waiting":`, `"num_waiting":"1","x":`, false},
	{`"name":"`, `"name":"\xff`, false},
	{`"name":"`, `"name":"\ud83d\ude00`, false},
	{`"name":"`, `"name":"\ud83d`, false},
	{`"name":"`, `"name":"\u00e9\n\"\\\/<`, true},
	{`"stream_name":"`, `"stream_name":"\u004f`, true},
	{`"name":"`, `"name":"` + "\x01", false},
	{`"created":`, `"created":null,"x":`, false},
	{`"created":"`, `"created":"x`, false},
	{`"ts":"`, `"ts":"2026-01-01T00:00:00+02:00","x":"`, true},
	{`"config":`, `"config":null,"x":`, false},
	{`"config":`, `"config":"x","x":`, false},
	{`"config":{`, `"config": { "x" : [ 1 , -2.5e+3 , true , null ] , `, true},
	{`"delivered":{`, `"delivered":{"last_active":null,`, false},
	{`"delivered":{`, `"delivered":{"CONSUMER_SEQ":1,`, false},
	{`"delivered":{`, `"delivered":{"x":{"y":[{}]},`, true},
	{`"name":`, `"x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `,"name":`, false},
	{`"name":`, `"x":` + strings.Repeat(`{"a":`, 90) + "1" + strings.Repeat("}", 90) + `,"name":`, true},
	{`"name":`, clusterObject + `"name":`, true},
	{`"name":`, `"cluster":{"leader":"n1"},"name":`, true},
	{`"name":`, `"cluster":{"leader":"n1","desired":{"name":"C2","replicas":[{"name":"n4","peer":"p"}]}},"name":`, true},
	{`"name":`, `"cluster":{"leader":"n1","desired":{"replicas":{}}},"name":`, false},
	{`"name":`, `"cluster":{"replicas":[]},"name":`, true},
	{`"name":`, `"cluster":{"Leader":"n1"},"name":`, false},
	{`"name":`, `"cluster":null,"name":`, false},
	{`"name":`, `"cluster":{"replicas":[null,{"name":"x","active":"1"}]},"name":`, false},
	{`"name":`, `"push_bound":null,"name":`, false},
	{`"name":`, `"paused":1,"name":`, false},
	{`"name":`, `"pause_remaining":9223372036854775807,"name":`, true},
	{`"name":`, `"error":{"code":503,"err_code":10008,"description":"x"},"name":`, false},
	{`"name":`, `"Error":null,"name":`, false},
	{`"total":`, `"total":1,"x":`, true},
	{`"total":`, `"Total":`, false},
	{`"consumers":[`, `"consumers":[null,`, false},
	{`"consumers":[`, `"consumers":null,"x":[`, false},
	{`"consumers":[`, `"missing":["a"],"offline":{"b":"gone"},"consumers":[`, false},
	{`"consumers":[`, `"streams":[],"consumers":[`, false},
	{`{`, `{"\u0074otal":1,`, false},
	{`{`, " \t\r\n{ ", true},
	{`{`, `[{`, false},
	{`"`, `"\`, false},
	{`:`, `::`, false},
	{`,`, `,,`, false},
}

// fuzzSeeds are captured answers, hostile variants of the first page and
// the first INFO answer, pretty-printed answers and pieces.
func fuzzSeeds(answers capturedAnswers) [][]byte {
	var seeds [][]byte
	for i, a := range append(answers.lists, answers.infos...) {
		seeds = append(seeds, a)
		for _, v := range hostileVariants {
			if i != 0 && i != len(answers.lists) {
				break
			}
			seeds = append(seeds, bytes.Replace(a, []byte(v.old), []byte(v.new), 1))
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, a, " ", "\t") == nil {
			seeds = append(seeds, pretty.Bytes())
		}
		seeds = append(seeds, a[:len(a)/2], a[:len(a)-1], append(bytes.Clone(a), 'x'), append(bytes.Clone(a), " {}"...))
	}
	return append(seeds, []byte(`null`), []byte(`[]`), []byte(`""`), []byte(`{}`), []byte(``), []byte(`{"consumers":[]}`))
}

// checkDecodersAgree decodes data as a LIST page and as an INFO answer,
// fast and with encoding/json, and fails unless every fast decoding is
// encoding/json's; it reports which fast decodings succeeded.
func checkDecodersAgree(t *testing.T, data []byte) (list, info bool) {
	t.Helper()
	var fast listPage[*consumerInfo]
	list = decodeConsumerList(bytes.Clone(data), &fast)
	var std listPage[*consumerInfo]
	stdErr := json.Unmarshal(data, &std)
	if list {
		require.NoError(t, stdErr, "fast decoded what encoding/json refuses")
		require.True(t, reflect.DeepEqual(std, fast), "LIST decoded differently:\nstd  %+v\nfast %+v", std, fast)
	} else {
		require.True(t, reflect.DeepEqual(listPage[*consumerInfo]{}, fast), "a fast decoder that gives up leaves the page alone")
	}

	var fastInfo consumerInfo
	var raw json.RawMessage
	ans := rawAnswer{raw: &raw, info: &fastInfo}
	info = ans.decodeFast(bytes.Clone(data))
	require.Equal(t, info, ans.decoded)
	// What requestInfo does without the fast path.
	var stdInfo consumerInfo
	var stdAns rawAnswer
	stdAns.raw = new(json.RawMessage)
	stdErr = json.Unmarshal(data, &stdAns)
	if stdErr == nil && stdAns.Error == nil {
		stdErr = json.Unmarshal(*stdAns.raw, &stdInfo)
	}
	if info {
		require.NoError(t, stdErr, "fast decoded an INFO answer encoding/json refuses")
		require.Nil(t, stdAns.Error, "fast decoded an INFO answer with an error")
		require.True(t, reflect.DeepEqual(stdInfo, fastInfo), "INFO decoded differently:\nstd  %+v\nfast %+v", stdInfo, fastInfo)
	} else {
		require.True(t, reflect.DeepEqual(consumerInfo{}, fastInfo), "a fast decoder that gives up leaves the info alone")
	}
	return list, info
}

// FuzzConsumerListDecode: whatever the input, the fast decoders of LIST
// pages and INFO answers either give up or decode exactly what
// encoding/json does; never anything it refuses.
func FuzzConsumerListDecode(f *testing.F) {
	for _, seed := range fuzzSeeds(captureConsumerAnswers(f, 10)) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodersAgree(t, data)
	})
}

// TestRealConsumerAnswersTakeTheFastPath: what a server writes is decoded
// by the fast path, as apiRequest dispatches to it; should it fall back
// to encoding/json, the speed-up would be gone without a failure.
func TestRealConsumerAnswersTakeTheFastPath(t *testing.T) {
	t.Parallel()
	answers := captureConsumerAnswers(t, 12)
	require.Len(t, answers.lists, 2)
	require.Len(t, answers.infos, 11)
	sawCluster := false
	for i, page := range answers.lists {
		var p listPage[*consumerInfo]
		var resp apiResponse = &p
		f, ok := resp.(fastDecoder)
		require.True(t, ok, "a consumer page has a fast decoder")
		list, _ := checkDecodersAgree(t, page)
		if i == len(answers.lists)-1 { // stream not found: an error
			require.False(t, list, "%s", page)
			require.False(t, f.decodeFast(page))
			continue
		}
		require.True(t, list, "%s", page)
		require.True(t, f.decodeFast(page))
		require.Len(t, p.Consumers, 12)
		require.Equal(t, 12, p.Total)
		byName := map[string]*consumerInfo{}
		for _, c := range p.Consumers {
			byName[c.Name] = c
			require.Equal(t, "ORDERS", c.Stream)
			require.False(t, c.Created.IsZero())
			require.False(t, c.TimeStamp.IsZero())
			require.True(t, json.Valid(c.Config.Raw))
			sawCluster = sawCluster || c.Cluster != nil
		}
		// Its ack wait (the first backoff) is a second: how many are
		// redelivered by now depends on the machine's speed.
		require.Positive(t, byName["c000"].NumAckPending)
		require.GreaterOrEqual(t, byName["c000"].Delivered.Consumer, uint64(6))
		require.NotNil(t, byName["c000"].Delivered.Last)
		require.NotNil(t, byName["c000"].AckFloor.Last)
		require.Contains(t, string(byName["c000"].Config.Raw), `"description":"say \"hi\" \\ \u003cb\u003ebold`)
		require.True(t, byName["c001"].PushBound)
		require.True(t, byName["c001"].Paused)
		require.Positive(t, byName["c001"].PauseRemaining)
		require.Equal(t, 1, byName["c007"].NumWaiting)
	}
	require.False(t, sawCluster, "a single server writes no cluster")
	for i, answer := range answers.infos {
		var info consumerInfo
		resp := &rawAnswer{raw: new(json.RawMessage), info: &info}
		_, fast := checkDecodersAgree(t, answer)
		if i == len(answers.infos)-1 { // not found: an error
			require.False(t, fast, "%s", answer)
			continue
		}
		require.True(t, fast, "%s", answer)
		require.True(t, resp.decodeFast(answer))
		require.Equal(t, fmt.Sprintf("c%03d", i), info.Name)
	}
}

// TestRealClusteredConsumerAnswersTakeTheFastPath: so do a clustered
// server's, each consumer with its cluster and replicas.
func TestRealClusteredConsumerAnswersTakeTheFastPath(t *testing.T) {
	t.Parallel()
	answers := captureClusteredConsumerAnswers(t, 3)
	for _, answer := range append(answers.lists, answers.infos...) {
		list, info := checkDecodersAgree(t, answer)
		require.True(t, list || info, "%s", answer)
	}
	var p listPage[*consumerInfo]
	require.True(t, p.decodeFast(answers.lists[0]))
	require.Len(t, p.Consumers, 3)
	for _, c := range p.Consumers {
		require.NotEmpty(t, c.Cluster.Leader)
		if c.Name == "c002" { // ephemeral
			continue
		}
		require.NotNil(t, c.Cluster.LeaderSince)
		require.Len(t, c.Cluster.Replicas, 2)
		require.NotEmpty(t, c.Cluster.Replicas[0].Peer)
	}
}

// TestFastDecoderKnowsEveryField: the fast decoder decodes each field of
// the types it fills; a field added to one (nats.go's, on an upgrade)
// would be left zero where encoding/json fills it.
func TestFastDecoderKnowsEveryField(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ  reflect.Type
		keys []string
	}{
		{reflect.TypeFor[listPage[*consumerInfo]](), listPageKeys},
		{reflect.TypeFor[consumerInfo](), consumerInfoKeys},
		{reflect.TypeFor[jetstream.SequenceInfo](), sequenceInfoKeys},
		{reflect.TypeFor[jetstream.ClusterInfo](), clusterInfoKeys},
		{reflect.TypeFor[jetstream.PeerInfo](), peerInfoKeys},
	} {
		var names []string
		for f := range c.typ.Fields() {
			require.False(t, f.Anonymous, "%s.%s", c.typ, f.Name)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			require.NotEmpty(t, name, "%s.%s", c.typ, f.Name)
			names = append(names, name)
		}
		require.ElementsMatch(t, names, c.keys, "%s", c.typ)
	}
}

// TestHostileConsumerAnswersFallBack: answers a server does not write
// fall back to encoding/json, which decodes or refuses them as before;
// a clustered consumer and whitespace stay on the fast path.
func TestHostileConsumerAnswersFallBack(t *testing.T) {
	t.Parallel()
	answers := captureConsumerAnswers(t, 3)
	page, info := answers.lists[0], answers.infos[0]
	// An error is a consumer's unknown field in a LIST page, and the
	// answer's error in an INFO answer.
	errorInside := map[string]bool{`"error":{"code":503,"err_code":10008,"description":"x"},"name":`: true, `"Error":null,"name":`: true}
	for _, v := range hostileVariants {
		variant := bytes.Replace(page, []byte(v.old), []byte(v.new), 1)
		list, _ := checkDecodersAgree(t, variant)
		require.Equal(t, v.fast || errorInside[v.new], list, "LIST %q", v.new)
		if v.old == `"total":` || v.old == `"consumers":[` { // not in an INFO answer
			continue
		}
		variant = bytes.Replace(info, []byte(v.old), []byte(v.new), 1)
		_, fast := checkDecodersAgree(t, variant)
		require.Equal(t, v.fast, fast, "INFO %q", v.new)
	}

	// A fallback still decodes: an upper-case key is encoding/json's
	// business, and it takes it for the field.
	var p listPage[*consumerInfo]
	upper := bytes.Replace(page, []byte(`"num_pending":`), []byte(`"NUM_PENDING":`), 1)
	require.False(t, p.decodeFast(upper))
	require.NoError(t, json.Unmarshal(upper, &p))
	require.NotEmpty(t, p.Consumers)

	// A clustered consumer's cluster is decoded.
	var clustered consumerInfo
	require.True(t, decodeConsumerInfoAnswer(bytes.Replace(info, []byte(`"name":`), []byte(clusterObject+`"name":`), 1), &clustered))
	require.Equal(t, "n1", clustered.Cluster.Leader)
	require.Len(t, clustered.Cluster.Replicas, 2)
	require.Equal(t, uint64(12), clustered.Cluster.Replicas[1].Lag)
}

// BenchmarkDecodeConsumerList decodes a real CONSUMER.LIST page of 10
// and of 256 consumers with encoding/json (std) and the fast decoder.
func BenchmarkDecodeConsumerList(b *testing.B) {
	pages := []struct {
		name string
		n    int
		page []byte
	}{
		{"consumers=10", 10, captureConsumerAnswers(b, 10).lists[0]},
		{"consumers=256", 256, captureConsumerAnswers(b, 256).lists[0]},
		{"clustered/consumers=10", 10, captureClusteredConsumerAnswers(b, 10).lists[0]},
	}
	for _, pg := range pages {
		n, page := pg.n, pg.page
		for _, how := range []struct {
			name   string
			decode func([]byte, *listPage[*consumerInfo]) bool
		}{
			{"std", func(data []byte, p *listPage[*consumerInfo]) bool { return json.Unmarshal(data, p) == nil }},
			{"fast", decodeConsumerList},
		} {
			b.Run(how.name+"/"+pg.name, func(b *testing.B) {
				b.SetBytes(int64(len(page)))
				b.ReportAllocs()
				for b.Loop() {
					var p listPage[*consumerInfo]
					if !how.decode(page, &p) || len(p.Consumers) != n {
						b.Fatal("not decoded")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/consumer")
			})
		}
	}
}
