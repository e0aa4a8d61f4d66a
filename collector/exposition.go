package collector

import (
	"cmp"
	"encoding/binary"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/store"
)

// The stream, consumer and server gauges are not client_golang collectors:
// with 10,000 streams x 10 consumers they are over a million series, and
// building a metric object for each on every scrape took seconds. Each
// cycle keeps its series as label strings and values (an exposition); a
// scrape writes them in the text format (exposition_text.go), and the
// gzipped form is built once per cycle and copied to every scraper. A
// scrape never calls JetStream nor reads the database.
//
// Names and labels are prometheus-nats-exporter's (its collector/jsz.go),
// so dashboards built for it work against jetwatch: every stream series
// carries streamLabelNames, every consumer series consumerLabelNames, and
// jetwatch's own per-stream and per-consumer gauges carry the same.

// streamGauge is one per-stream metric family; value reports false when
// the stream has no such value.
type streamGauge struct {
	name, help string
	value      func(*store.Stream) (float64, bool)
}

// consumerGauge is one per-consumer metric family. To add one, add a line
// to consumerGauges: it gets the consumer labels and is written for every
// consumer read this cycle.
type consumerGauge struct {
	name, help string
	value      func(*store.Consumer) (float64, bool)
}

var (
	streamGauges = []streamGauge{
		{"jetstream_stream_total_messages", "Messages stored in the stream.", func(s *store.Stream) (float64, bool) { return float64(s.Messages), true }},
		{"jetstream_stream_total_bytes", "Bytes stored in the stream.", func(s *store.Stream) (float64, bool) { return float64(s.Bytes), true }},
		{"jetstream_stream_first_seq", "First sequence in the stream.", func(s *store.Stream) (float64, bool) { return float64(s.FirstSeq), true }},
		{"jetstream_stream_last_seq", "Last sequence in the stream.", func(s *store.Stream) (float64, bool) { return float64(s.LastSeq), true }},
		{"jetstream_stream_consumer_count", "Consumers of the stream.", func(s *store.Stream) (float64, bool) { return float64(s.ConsumerCount), true }},
		{"jetstream_stream_subject_count", "Distinct subjects in the stream.", func(s *store.Stream) (float64, bool) { return float64(s.NumSubjects), true }},
		{"jetstream_stream_limit_bytes", "The stream's configured byte limit; -1 when unlimited.", func(s *store.Stream) (float64, bool) { return float64(s.Limits.MaxBytes), true }},
		{"jetstream_stream_limit_messages", "The stream's configured message limit; -1 when unlimited.", func(s *store.Stream) (float64, bool) { return float64(s.Limits.MaxMsgs), true }},
		{"jetstream_stream_num_deleted", "Interior deleted messages of the stream (jetwatch's; not an exporter metric).", func(s *store.Stream) (float64, bool) { return float64(s.NumDeleted), true }},
		{healthGauge, "Stream health: 0 ok, 1 warning, 2 critical.", func(s *store.Stream) (float64, bool) { return float64(store.HealthRank(s.Health.Level)), true }},
		{"jetwatch_stream_messages_per_second", "Messages added per second, from the last two samples.", func(s *store.Stream) (float64, bool) { return s.InPerSec, true }},
	}
	consumerGauges = []consumerGauge{
		{"jetstream_consumer_delivered_consumer_seq", "Last delivered consumer sequence.", func(c *store.Consumer) (float64, bool) { return float64(c.Delivered.ConsumerSeq), true }},
		{"jetstream_consumer_delivered_stream_seq", "Last delivered stream sequence.", func(c *store.Consumer) (float64, bool) { return float64(c.Delivered.StreamSeq), true }},
		{"jetstream_consumer_last_delivery_seconds", "Seconds since the last delivery, by the server's clock; absent before the first.", func(c *store.Consumer) (float64, bool) {
			return secondsSince(c.Delivered.LastActive, c)
		}},
		{"jetstream_consumer_last_ack_seconds", "Seconds since the ack floor last moved, by the server's clock; absent before the first ack.", func(c *store.Consumer) (float64, bool) {
			return secondsSince(c.AckFloor.LastActive, c)
		}},
		{"jetstream_consumer_num_ack_pending", "Messages delivered and not yet acknowledged.", func(c *store.Consumer) (float64, bool) { return float64(c.NumAckPending), true }},
		{"jetstream_consumer_num_redelivered", "Messages redelivered and not yet acknowledged.", func(c *store.Consumer) (float64, bool) { return float64(c.NumRedelivered), true }},
		{"jetstream_consumer_num_waiting", "Pull requests waiting for messages.", func(c *store.Consumer) (float64, bool) { return float64(c.NumWaiting), true }},
		{"jetstream_consumer_num_pending", "Messages in the stream not yet delivered to the consumer.", func(c *store.Consumer) (float64, bool) { return float64(c.NumPending), true }},
		{"jetstream_consumer_ack_floor_stream_seq", "Ack floor stream sequence.", func(c *store.Consumer) (float64, bool) { return float64(c.AckFloor.StreamSeq), true }},
		{"jetstream_consumer_ack_floor_consumer_seq", "Ack floor consumer sequence.", func(c *store.Consumer) (float64, bool) { return float64(c.AckFloor.ConsumerSeq), true }},
		{"jetwatch_consumer_stalled", "1 when the consumer is stalled, or stopped with nobody consuming (not paused or deleted): messages wait and nothing is acknowledged.", func(c *store.Consumer) (float64, bool) { return boolValue(c.Stalled), true }},
		// Only while paused: one series per paused consumer, not one more
		// per consumer.
		{"jetwatch_consumer_paused", "1 while the consumer is paused on the server (until jetwatch_consumer_pause_until_timestamp_seconds); absent otherwise. Use `unless on (stream_name, consumer_name) jetwatch_consumer_paused` to leave paused consumers out of lag alerts.", func(c *store.Consumer) (float64, bool) { return 1, c.Paused }},
		{"jetwatch_consumer_pause_until_timestamp_seconds", "When a paused consumer resumes by itself, as a Unix time; absent unless paused until a time.", func(c *store.Consumer) (float64, bool) {
			if !c.Paused || c.PauseUntil == nil {
				return 0, false
			}
			return float64(c.PauseUntil.UnixMilli()) / 1000, true
		}},
		{"jetwatch_consumer_delivered_per_second", "Deliveries per second, from the last two samples.", func(c *store.Consumer) (float64, bool) { return c.DeliveredPerSec, true }},
		{"jetwatch_consumer_acked_per_second", "Acknowledgements per second (ack floor movement), from the last two samples.", func(c *store.Consumer) (float64, bool) { return c.AckedPerSec, true }},
		{lagStateGauge, "Consumer lag judged over a window of samples: 0 ok, 1 draining, 2 falling behind, 3 stalled, 4 stopped (nobody consuming, or deleted), 5 paused (on purpose, until a time: it falls behind as expected).", func(c *store.Consumer) (float64, bool) { return float64(store.LagRank(c.LagState)), true }},
	}
	// serverGauges are the exporter's per-server JetStream series, from
	// JSZ; only with a system-account connection.
	serverGauges = []struct {
		name, help string
		value      func(*store.Server) float64
	}{
		{"jetstream_server_jetstream_disabled", "1 when JetStream is disabled on the server.", func(s *store.Server) float64 { return boolValue(s.Disabled) }},
		{"jetstream_server_max_memory", "The server's JetStream memory limit in bytes.", func(s *store.Server) float64 { return float64(s.MaxMemory) }},
		{"jetstream_server_max_storage", "The server's JetStream file storage limit in bytes.", func(s *store.Server) float64 { return float64(s.MaxStorage) }},
		{"jetstream_server_total_streams", "Streams with a replica on the server.", func(s *store.Server) float64 { return float64(s.Streams) }},
		{"jetstream_server_total_consumers", "Consumers with a replica on the server.", func(s *store.Server) float64 { return float64(s.Consumers) }},
		{"jetstream_server_total_messages", "Messages stored on the server.", func(s *store.Server) float64 { return float64(s.Messages) }},
		{"jetstream_server_total_message_bytes", "Message bytes stored on the server.", func(s *store.Server) float64 { return float64(s.Bytes) }},
	}
	// accountGauges are each account's use of each server, from JSZ.
	accountGauges = []struct {
		name, help string
		value      func(*store.ServerAccount) float64
	}{
		{"jetstream_account_max_memory", "Memory the account has reserved on the server, in bytes.", func(a *store.ServerAccount) float64 { return float64(a.ReservedMemory) }},
		{"jetstream_account_max_storage", "File storage the account has reserved on the server, in bytes.", func(a *store.ServerAccount) float64 { return float64(a.ReservedStorage) }},
		{"jetstream_account_storage_used", "File storage the account uses on the server, in bytes.", func(a *store.ServerAccount) float64 { return float64(a.Storage) }},
		{"jetstream_account_memory_used", "Memory the account uses on the server, in bytes.", func(a *store.ServerAccount) float64 { return float64(a.Memory) }},
	}
)

// The label names of each kind of series, in the exporter's order.
var (
	serverLabelNames   = []string{"server_id", "server_name", "cluster", "domain", "meta_leader", "is_meta_leader"}
	accountLabelNames  = []string{"account", "account_name", "account_id"}
	streamLabelNames   = concat(serverLabelNames, accountLabelNames, []string{"stream_name", "stream_leader", "is_stream_leader", "stream_raft_group"})
	consumerLabelNames = concat(streamLabelNames, []string{"consumer_name", "consumer_leader", "is_consumer_leader", "consumer_desc"})
)

const (
	limitGauge    = "jetwatch_stream_limit_used_ratio"
	healthGauge   = "jetwatch_stream_health"
	lagStateGauge = "jetwatch_consumer_lag_state"
)

// seriesLabels are one series' labels in three parts, each already
// escaped and written comma-separated when not empty: head, the server and
// account labels, shared by every series read from one server; stream,
// shared by a stream's series; own, the series' own (a consumer's, a
// source's). So a million consumer series hold only their own labels.
// A consumer family's own part is packed (see packConsumerLabels).
type seriesLabels struct{ head, stream, own string }

// family is one metric family: a value for each series of labels, in the
// order written.
type family struct {
	name, help string
	labels     []seriesLabels // may be shared with other families
	values     []float64      // values[i] is labels[i]'s
	absent     []bool         // nil when every series has a value
	// packedOwn says the labels' own parts are packed consumer labels,
	// written out in full as they are written.
	packedOwn bool
}

// newFamily returns a family with a value for each of labels, to be set.
func newFamily(name, help string, labels []seriesLabels) family {
	return family{name: name, help: help, labels: labels, values: make([]float64, len(labels))}
}

// set gives series i its value, or marks it absent.
func (f *family) set(i int, v float64, ok bool) {
	if ok {
		f.values[i] = v
		return
	}
	if f.absent == nil {
		f.absent = make([]bool, len(f.values))
	}
	f.absent[i] = true
}

// exposition is one cycle's sampled series. It never changes once
// published; its gzipped form is built on first use.
type exposition struct {
	families []family
	gzOnce   sync.Once
	gz       gzipBody
	// compressed is set once gz is ready.
	compressed atomic.Bool
	// unitPoints overrides the const of that name, for tests.
	unitPoints int
}

// connectedServer is the server jetwatch's connection is on: the only one
// whose id it knows without a system account.
type connectedServer struct{ name, id string }

func connectedServerOf(nc *nats.Conn) connectedServer {
	return connectedServer{name: nc.ConnectedServerName(), id: nc.ConnectedServerId()}
}

// newExposition builds the cycle's series. servers are those JSZ reported
// this cycle (nil without a system account): they get their own series,
// and tell the meta leader. known are the servers known to the sampler,
// for their ids. others are the other accounts read this cycle: their
// streams and consumers get the same series under their account labels.
func newExposition(c *store.Cycle, others []store.Account, servers, known []store.Server, id identity, conn connectedServer) *exposition {
	l := newLabeller(servers, known, id, conn, len(c.Streams))
	e := &exposition{}

	// Every account's streams and consumers, each with its account's
	// labeller: the own account's first.
	allStreams := c.Streams
	streamLab := make([]*labeller, len(c.Streams))
	consumers := make([]*store.Consumer, 0, len(c.Consumers))
	consumerLab := make([]*labeller, len(c.Consumers))
	for i := range c.Consumers {
		consumers = append(consumers, &c.Consumers[i])
	}
	for i := range streamLab {
		streamLab[i] = l
	}
	for i := range consumerLab {
		consumerLab[i] = l
	}
	for i := range others {
		a := &others[i]
		if a.Unread != nil {
			continue
		}
		al := l.forAccount(identity{Account: a.Name, AccountID: a.ID, Domain: id.Domain}, len(a.Streams))
		if len(allStreams) == len(c.Streams) {
			allStreams = slices.Clone(c.Streams)
		}
		allStreams = append(allStreams, a.Streams...)
		for range a.Streams {
			streamLab = append(streamLab, al)
		}
		for j := range a.Consumers {
			consumers = append(consumers, &a.Consumers[j])
			consumerLab = append(consumerLab, al)
		}
	}

	streamLabels := make([]seriesLabels, len(allStreams))
	// A consumer's stream, by its account's labeller and name.
	type streamKey struct {
		l    *labeller
		name string
	}
	streams := make(map[streamKey]*store.Stream, len(allStreams))
	for i := range allStreams {
		st := &allStreams[i]
		sl := streamLab[i]
		streams[streamKey{sl, st.Name}] = st
		leader, cluster := sl.readFrom(st.Cluster, st.Unread != nil)
		streamLabels[i] = seriesLabels{head: sl.head(leader, cluster), stream: sl.streamLabels(st, leader)}
	}
	for _, g := range streamGauges {
		f := newFamily(g.name, g.help, streamLabels)
		for i := range allStreams {
			v, ok := g.value(&allStreams[i])
			// A stream not read this cycle has only its health: its
			// numbers are old, and an absent series says so.
			f.set(i, v, ok && (allStreams[i].Unread == nil || g.name == healthGauge))
		}
		e.families = append(e.families, f)
	}
	e.families = append(e.families, limitFamily(allStreams, streamLabels))
	e.families = append(e.families, sourceFamilies(allStreams, streamLabels)...)

	// A consumer not read this cycle has no series at all. Consumers are
	// in their account's order: the own account's, then each other's.
	consumerLabels := make([]seriesLabels, 0, len(consumers))
	readConsumers := make([]*store.Consumer, 0, len(consumers))
	for i, cs := range consumers {
		if cs.Unread != nil {
			continue
		}
		sl := consumerLab[i]
		st := streams[streamKey{sl, cs.Stream}]
		if st == nil {
			st = &store.Stream{Name: cs.Stream}
		}
		leader, cluster := sl.readFrom(cs.Cluster, false)
		consumerLabels = append(consumerLabels, seriesLabels{
			head: sl.head(leader, cluster), stream: sl.streamLabels(st, leader), own: packConsumerLabels(cs, leader),
		})
		readConsumers = append(readConsumers, cs)
	}
	for _, g := range consumerGauges {
		f := newFamily(g.name, g.help, consumerLabels)
		f.packedOwn = true
		for i, cs := range readConsumers {
			v, ok := g.value(cs)
			// A deleted consumer has only its lag state (stopped).
			f.set(i, v, ok && (cs.DeletedAt == nil || g.name == lagStateGauge))
		}
		e.families = append(e.families, f)
	}
	if servers != nil {
		e.families = append(e.families, serverFamilies(servers, l)...)
	}
	return e
}

// publishMetrics makes the cycle's series what /metrics serves. Runs
// within a cycle (s.cycle held).
func (s *Sampler) publishMetrics(c *store.Cycle, id identity, others []store.Account) {
	known := c.Servers
	if known == nil {
		known = s.servers
	}
	// The last cycle's series go before this one's are built, rather than
	// both being held (a fifth of the peak memory at 10,000 x 10): a
	// scrape meanwhile waits for the new ones, a fraction of a second.
	s.building.Lock()
	s.exposition.Store(nil)
	e := newExposition(c, others, c.Servers, known, id, connectedServerOf(s.nc))
	s.exposition.Store(e)
	s.building.Unlock()
	// While something scrapes with gzip, compress now rather than in the
	// next scrape, so a scrape is a copy. It runs on its own (it only
	// reads e), one at a time: cycles shorter than a compression leave
	// it to the scrape rather than pile up.
	last := s.gzipScrapedAt.Load()
	if last != 0 && s.cfg.Now().UnixNano()-last < int64(gzipAheadWhileScraped) && s.compressingAhead.CompareAndSwap(false, true) {
		go func() {
			defer s.compressingAhead.Store(false)
			e.gzipped()
		}()
	}
}

// gzipAheadWhileScraped is how long after a gzipped scrape each new cycle
// is compressed ahead of the next one.
const gzipAheadWhileScraped = 10 * time.Minute

// WriteMetrics writes the latest cycle's stream, consumer and server
// series in the Prometheus text format followed by extra (more text, such
// as a registry's metrics); when gz is set, as one gzip member. Before the
// first cycle it writes extra alone.
func (s *Sampler) WriteMetrics(w io.Writer, gz bool, extra []byte) error {
	s.building.RLock()
	e := s.exposition.Load()
	s.building.RUnlock()
	if !gz {
		if e != nil {
			if err := e.writeText(w); err != nil {
				return err
			}
		}
		_, err := w.Write(extra)
		return err
	}
	s.gzipScrapedAt.Store(s.cfg.Now().UnixNano())
	body := &gzipBody{}
	if e != nil {
		body = e.gzipped()
	}
	return body.writeGzip(w, extra)
}

// limitFamily is the share of each stream limit in use.
func limitFamily(streams []store.Stream, streamLabels []seriesLabels) family {
	f := family{name: limitGauge, help: "Share of a stream limit in use (0-1), by limit (messages, bytes) and the stream's discard policy (new: publishes are rejected at the limit; old: the oldest messages go); absent when unlimited."}
	add := func(i int, limit string, pct float64) {
		f.labels = append(f.labels, seriesLabels{streamLabels[i].head, streamLabels[i].stream, limit})
		f.values = append(f.values, pct/100)
	}
	for i := range streams {
		st := &streams[i]
		if st.Unread != nil {
			continue
		}
		// The policy is "new" or "old" (collector's own words), safe as a
		// label value as it is.
		discard := `,discard="` + st.Limits.Discard + `"`
		if p := st.Limits.MsgsUsedPct; p != nil {
			add(i, `limit="messages"`+discard, *p)
		}
		if p := st.Limits.BytesUsedPct; p != nil {
			add(i, `limit="bytes"`+discard, *p)
		}
	}
	return f
}

// sourceFamilies are the exporter's mirror and source lag and activity.
func sourceFamilies(streams []store.Stream, streamLabels []seriesLabels) []family {
	sourceLag := family{name: "jetstream_stream_source_lag", help: "Messages a stream's source is behind."}
	sourceActive := family{name: "jetstream_stream_source_active_duration_ns", help: "Nanoseconds since a stream's source was last active; -1 when it never was."}
	mirrorLag := family{name: "jetstream_stream_mirror_lag", help: "Messages a stream's mirror is behind."}
	mirrorActive := family{name: "jetstream_stream_mirror_active_duration_ns", help: "Nanoseconds since a stream's mirror origin was last active; -1 when it never was."}
	var sources, mirrors []seriesLabels
	for i := range streams {
		st := &streams[i]
		if st.Unread != nil {
			continue
		}
		seen := map[string]bool{}
		for _, src := range st.Sources {
			// The same origin sourced twice (with other filters) would
			// repeat a series, which Prometheus rejects.
			own := labels("source_name", src.Name, "source_api", src.APIPrefix, "source_deliver", src.DeliverPrefix)
			if seen[own] {
				continue
			}
			seen[own] = true
			sources = append(sources, seriesLabels{streamLabels[i].head, streamLabels[i].stream, own})
			sourceLag.values = append(sourceLag.values, float64(src.Lag))
			sourceActive.values = append(sourceActive.values, activeNanos(src.Active))
		}
		if m := st.Mirror; m != nil {
			own := labels("mirror_name", m.Name, "mirror_api", m.APIPrefix, "mirror_deliver", m.DeliverPrefix)
			mirrors = append(mirrors, seriesLabels{streamLabels[i].head, streamLabels[i].stream, own})
			mirrorLag.values = append(mirrorLag.values, float64(m.Lag))
			mirrorActive.values = append(mirrorActive.values, activeNanos(m.Active))
		}
	}
	sourceLag.labels, sourceActive.labels = sources, sources
	mirrorLag.labels, mirrorActive.labels = mirrors, mirrors
	return []family{sourceLag, sourceActive, mirrorLag, mirrorActive}
}

// serverFamilies are the exporter's per-server and per-account series of
// the servers that answered, and every server's health.
func serverFamilies(servers []store.Server, l *labeller) []family {
	serverLabels := make([]seriesLabels, len(servers))
	var accountLabels []seriesLabels
	var accounts []*store.ServerAccount
	for i := range servers {
		srv := &servers[i]
		serverLabels[i] = seriesLabels{head: l.ownServerBlock(srv)}
		if srv.DownSince != nil {
			continue
		}
		for j := range srv.Accounts {
			a := &srv.Accounts[j]
			accounts = append(accounts, a)
			accountLabels = append(accountLabels, seriesLabels{head: serverLabels[i].head, own: labels("account", a.Name, "account_name", a.Name, "account_id", a.ID)})
		}
	}
	var out []family
	for _, g := range serverGauges {
		f := newFamily(g.name, g.help, serverLabels)
		for i := range servers {
			// A server that stopped answering has only its health.
			f.set(i, g.value(&servers[i]), servers[i].DownSince == nil)
		}
		out = append(out, f)
	}
	for _, g := range accountGauges {
		f := newFamily(g.name, g.help, accountLabels)
		for i, a := range accounts {
			f.set(i, g.value(a), true)
		}
		out = append(out, f)
	}
	health := newFamily("jetwatch_server_health", "Server health: 0 ok, 1 warning, 2 critical (2 while it does not answer).", serverLabels)
	for i := range servers {
		health.set(i, float64(store.HealthRank(servers[i].Health.Level)), true)
	}
	return append(out, health)
}

// labeller builds the exporter's label values from what jetwatch knows
// this cycle, and shares the head of every series on one server.
type labeller struct {
	id         identity
	conn       connectedServer
	servers    map[string]*store.Server
	metaLeader string // "" when not known
	account    string
	heads      map[[2]string]string // by server and cluster
	// streams are stream labels by stream and the server a series is
	// read from: a stream's consumers mostly share their stream's leader.
	streams map[[2]string]string
}

func newLabeller(current, known []store.Server, id identity, conn connectedServer, streams int) *labeller {
	l := &labeller{
		id: id, conn: conn, servers: make(map[string]*store.Server, len(known)),
		heads: map[[2]string]string{}, streams: make(map[[2]string]string, 2*streams),
	}
	for i := range known {
		l.servers[known[i].Name] = &known[i]
	}
	for _, srv := range current {
		if l.metaLeader == "" && srv.DownSince == nil {
			l.metaLeader = srv.MetaLeader
		}
	}
	l.account = labels("account", id.Account, "account_name", id.Account, "account_id", id.AccountID)
	return l
}

// forAccount is a labeller of another account's series: the same servers,
// that account's labels.
func (l *labeller) forAccount(id identity, streams int) *labeller {
	return &labeller{
		id: id, conn: l.conn, servers: l.servers, metaLeader: l.metaLeader,
		account: labels("account", id.Account, "account_name", id.Account, "account_id", id.AccountID),
		heads:   map[[2]string]string{}, streams: make(map[[2]string]string, 2*streams),
	}
}

// head is the server and account labels of a series read from the server
// named, in cluster.
func (l *labeller) head(server, cluster string) string {
	key := [2]string{server, cluster}
	if h, ok := l.heads[key]; ok {
		return h
	}
	serverID, domain := "", l.id.Domain
	if srv := l.servers[server]; srv != nil {
		serverID, domain = srv.ID, cmp.Or(domain, srv.Domain)
	}
	if serverID == "" && server != "" && server == l.conn.name {
		serverID = l.conn.id
	}
	metaLeader, isMetaLeader := "", ""
	switch {
	case cluster == "":
		// No JetStream cluster: the server is its own meta leader, as
		// the exporter says.
		isMetaLeader = "true"
	case l.metaLeader != "":
		metaLeader, isMetaLeader = l.metaLeader, boolLabel(server == l.metaLeader)
	}
	h := labels("server_id", serverID, "server_name", server, "cluster", cluster, "domain", domain,
		"meta_leader", metaLeader, "is_meta_leader", isMetaLeader) + "," + l.account
	l.heads[key] = h
	return h
}

// ownServerBlock is a server's labels on its own series, as it reported
// itself to JSZ.
func (l *labeller) ownServerBlock(srv *store.Server) string {
	isMetaLeader := "true"
	if srv.Cluster != "" {
		isMetaLeader = boolLabel(srv.MetaLeader != "" && srv.MetaLeader == srv.Name)
	}
	return labels("server_id", srv.ID, "server_name", srv.Name, "cluster", srv.Cluster, "domain", srv.Domain,
		"meta_leader", srv.MetaLeader, "is_meta_leader", isMetaLeader)
}

// readFrom is the server a stream's or consumer's numbers come from, and
// its cluster: its RAFT group's leader. Without a RAFT group, on a server
// without a JetStream cluster, that is the server jetwatch is connected
// to; for a stream never read, nobody knows.
func (l *labeller) readFrom(c *store.Cluster, unread bool) (server, cluster string) {
	switch {
	case c != nil:
		return c.Leader, c.Name
	case unread:
		return "", ""
	}
	return l.conn.name, ""
}

// streamLabels are a stream's labels on a series read from server.
func (l *labeller) streamLabels(st *store.Stream, server string) string {
	key := [2]string{st.Name, server}
	if t, ok := l.streams[key]; ok {
		return t
	}
	leader, _ := l.readFrom(st.Cluster, st.Unread != nil)
	raftGroup := ""
	if st.Cluster != nil {
		raftGroup = st.Cluster.RaftGroup
	}
	t := labels("stream_name", st.Name, "stream_leader", leader, "is_stream_leader", boolLabel(leader != "" && leader == server),
		"stream_raft_group", raftGroup)
	l.streams[key] = t
	return t
}

// packConsumerLabels packs a consumer's own labels, read from leader, as
// their escaped values alone, each but the last after its length as a
// uvarint: with the label names, 100,000 consumers' labels held 13 MB
// between scrapes; packed, a fifth. appendConsumerLabels writes them out.
func packConsumerLabels(c *store.Consumer, leader string) string {
	name, leader, desc := escapeLabel(c.Name), escapeLabel(leader), escapeLabel(c.Description)
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(name)+len(leader)+len(desc))
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, uint64(len(leader)))
	b = append(b, leader...)
	b = append(b, desc...)
	return string(b)
}

// appendConsumerLabels appends the consumer labels packed by
// packConsumerLabels, as the text format writes them.
func appendConsumerLabels(b []byte, packed string) []byte {
	// Decoded by hand: binary.Uvarint takes bytes, and a conversion per
	// series would allocate.
	next := func() string {
		n, shift, i := 0, 0, 0
		for ; packed[i] >= 0x80; i++ {
			n |= int(packed[i]&0x7f) << shift
			shift += 7
		}
		n |= int(packed[i]) << shift
		v := packed[i+1 : i+1+n]
		packed = packed[i+1+n:]
		return v
	}
	name, leader := next(), next()
	b = append(b, `consumer_name="`...)
	b = append(b, name...)
	b = append(b, `",consumer_leader="`...)
	b = append(b, leader...)
	b = append(b, `",is_consumer_leader="`...)
	b = append(b, boolLabel(leader != "")...)
	b = append(b, `",consumer_desc="`...)
	b = append(b, packed...)
	return append(b, '"')
}

// escapeLabel is a label value with the text format's escaping.
func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return labelEscaper.Replace(v)
}

// labels renders k="v",... with the text format's escaping.
func labels(kv ...string) string {
	n := 0
	for _, s := range kv {
		n += len(s) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		if v := kv[i+1]; !strings.ContainsAny(v, "\\\"\n") {
			b.WriteString(v)
		} else {
			labelEscaper.WriteString(&b, v) //nolint:errcheck // writes to memory
		}
		b.WriteByte('"')
	}
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// secondsSince is the time from an activity to the server's answer, as the
// exporter measures it.
func secondsSince(t *time.Time, c *store.Consumer) (float64, bool) {
	if t == nil {
		return 0, false
	}
	now := c.ServerTime
	if now.IsZero() {
		now = c.SampledAt
	}
	return now.Sub(*t).Seconds(), true
}

// activeNanos is the exporter's value for a source's activity: nanoseconds,
// -1 when never active.
func activeNanos(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
