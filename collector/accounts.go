package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/store"
)

// Every account. jetwatch samples its own account in depth through the
// JetStream API (history, dead letters, advisories). With AllAccounts and a
// system-account connection it also reads every other account's streams
// and consumers from JSZ, as prometheus-nats-exporter and Surveyor do: one
// $SYS.REQ.SERVER.PING.JSZ request per account each cycle, each server
// answering for the streams it leads. Those accounts are judged with the
// same rules (lag as a trend, limits, replicas) and exported with the same
// series and an account label, but kept in memory only: their history is
// Prometheus's.

// accountsConcurrency is how many accounts are asked for at once.
const accountsConcurrency = 4

// jszAccountAnswer is one server's JSZ answer for one account, with its
// streams and their consumers.
type jszAccountAnswer struct {
	Server struct {
		Name string `json:"name"`
	} `json:"server"`
	Data *struct {
		Accounts []struct {
			Name    string      `json:"name"`
			ID      string      `json:"id"`
			Memory  uint64      `json:"memory"`
			Storage uint64      `json:"storage"`
			Streams []jszStream `json:"stream_detail"`
		} `json:"account_details"`
	} `json:"data"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// jszStream is a stream as JSZ details it: the parts of a STREAM.INFO
// answer, and its consumers as CONSUMER.INFO would give them.
type jszStream struct {
	Name      string                        `json:"name"`
	Created   time.Time                     `json:"created"`
	Cluster   *jetstream.ClusterInfo        `json:"cluster,omitempty"`
	Config    *jetstream.StreamConfig       `json:"config,omitempty"`
	State     jetstream.StreamState         `json:"state"`
	Consumers []*consumerInfo               `json:"consumer_detail,omitempty"`
	Mirror    *jetstream.StreamSourceInfo   `json:"mirror,omitempty"`
	Sources   []*jetstream.StreamSourceInfo `json:"sources,omitempty"`
}

// accountRef names an account as JSZ does: ID is what a request filters
// by, Name its name tag (or the ID again).
type accountRef struct{ Name, ID string }

// otherAccounts are the accounts the servers reported, but for jetwatch's
// own, sorted by name.
func otherAccounts(servers []store.Server, own identity) []accountRef {
	seen := map[string]bool{}
	var out []accountRef
	for i := range servers {
		if servers[i].DownSince != nil {
			continue
		}
		for _, a := range servers[i].Accounts {
			if seen[a.ID] || a.ID == own.AccountID || (own.AccountID == "" && a.Name == own.Account) {
				continue
			}
			seen[a.ID] = true
			out = append(out, accountRef{Name: a.Name, ID: a.ID})
		}
	}
	slices.SortFunc(out, func(a, b accountRef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readAccounts reads every other account's streams and consumers.
// servers are those that answered JSZ this cycle. It touches nothing of
// the sampler's but its connection: it runs while the cycle goes on.
func (s *Sampler) readAccounts(ctx context.Context, servers []store.Server, own identity, at time.Time) []store.Account {
	refs := otherAccounts(servers, own)
	answering := 0
	for i := range servers {
		if servers[i].DownSince == nil {
			answering++
		}
	}
	out := make([]store.Account, len(refs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, accountsConcurrency)
	for i, ref := range refs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = s.sampleAccount(ctx, ref, answering, at)
		})
	}
	wg.Wait()
	return out
}

// judgeAccounts judges the accounts read, one at a time, each with lag
// windows of its own. Runs within a cycle (s.cycle held).
func (s *Sampler) judgeAccounts(out []store.Account, at, now time.Time) {
	if !s.cfg.AllAccounts || out == nil {
		return
	}
	live := map[string]bool{}
	for i := range out {
		a := &out[i]
		live[a.ID] = true
		m := s.accountLag[a.ID]
		if m == nil {
			m = &accountMemory{lag: newLagTracker(s.cfg.Interval, s.cfg.StallAfter, s.cfg.DeletedFor)}
			s.accountLag[a.ID] = m
		}
		t := m.lag
		t.begin(nil)
		judgeAccount(a, t, at, now)
		if a.Unread == nil {
			t.forgetUnseen()
			m.rates(a, at)
		}
	}
	for id := range s.accountLag {
		if !live[id] {
			delete(s.accountLag, id)
		}
	}
}

// accountMemory is what is kept of another account between cycles.
type accountMemory struct {
	lag *lagTracker
	// prev are the last counts of its streams (by name) and consumers (by
	// stream NUL name), from which rates per second are derived.
	prev map[string]prevSample
}

// rates sets the account's streams' and consumers' rates per second from
// the counts of the cycle before, as jetwatch's own are, and keeps this
// cycle's counts: those of streams and consumers gone are dropped.
func (m *accountMemory) rates(a *store.Account, at time.Time) {
	next := make(map[string]prevSample, len(a.Streams)+len(a.Consumers))
	for i := range a.Streams {
		st := &a.Streams[i]
		if p, ok := m.prev[st.Name]; ok {
			if dt := at.Sub(p.at).Seconds(); dt > 0 {
				st.InPerSec, st.BytesInPerSec = rate(p.seq, st.LastSeq, dt), rate(p.bytes, st.Bytes, dt)
			}
		}
		next[st.Name] = prevSample{at: at, seq: st.LastSeq, bytes: st.Bytes}
	}
	for i := range a.Consumers {
		c := &a.Consumers[i]
		key := c.Stream + "\x00" + c.Name
		if p, ok := m.prev[key]; ok {
			if dt := at.Sub(p.at).Seconds(); dt > 0 {
				c.DeliveredPerSec = rate(p.seq, c.Delivered.ConsumerSeq, dt)
				c.AckedPerSec = rate(p.ackFloor, c.AckFloor.ConsumerSeq, dt)
			}
		}
		next[key] = prevSample{at: at, seq: c.Delivered.ConsumerSeq, ackFloor: c.AckFloor.ConsumerSeq}
	}
	m.prev = next
}

// sampleAccount asks every server for one account's streams, expecting
// answering answers.
func (s *Sampler) sampleAccount(ctx context.Context, ref accountRef, answering int, at time.Time) store.Account {
	a := store.Account{Name: ref.Name, ID: ref.ID, SampledAt: at}
	req, err := json.Marshal(map[string]any{"account": ref.ID, "streams": true, "consumer": true, "config": true, "stream_leader_only": true})
	if err != nil {
		a.Unread = &store.Unread{Why: "request", Detail: err.Error()}
		return a
	}
	byName := map[string]*jszStream{}
	var names []string
	var problem error
	// A server's bad answer is noted, not fatal: the others' still count.
	n, err := s.pingJSZ(ctx, req, answering, func(m *nats.Msg) error {
		var r jszAccountAnswer
		if err := json.Unmarshal(m.Data, &r); err != nil {
			problem = fmt.Errorf("malformed answer: %w", err)
			return nil
		}
		if r.Error != nil {
			problem = fmt.Errorf("server %s answered: %s", r.Server.Name, r.Error.Description)
			return nil
		}
		if r.Data == nil {
			return nil
		}
		for _, d := range r.Data.Accounts {
			if d.ID != ref.ID {
				continue
			}
			// Every server reports the account's use of itself.
			a.Memory += d.Memory
			a.Storage += d.Storage
			for i := range d.Streams {
				st := &d.Streams[i]
				// Only a stream's leader answers for it; a stream
				// without RAFT group lives on the server that answered.
				if byName[st.Name] == nil {
					byName[st.Name] = st
					names = append(names, st.Name)
				}
			}
		}
		return nil
	})
	switch {
	case err != nil:
		a.Unread = &store.Unread{Why: "no response", Detail: err.Error()}
		return a
	case n == 0:
		a.Unread = &store.Unread{Why: "no response", Detail: "no server answered for the account"}
		return a
	case problem != nil && len(names) == 0:
		a.Unread = &store.Unread{Why: "error", Detail: problem.Error()}
		return a
	}
	slices.Sort(names)
	for _, name := range names {
		d := byName[name]
		info := jetstream.StreamInfo{Created: d.Created, State: d.State, Cluster: d.Cluster, Mirror: d.Mirror, Sources: d.Sources}
		if d.Config != nil {
			info.Config = *d.Config
		}
		info.Config.Name = name
		st := streamFromInfo(&info, at)
		st.Config = nil // kept in memory each cycle: only what is shown
		a.Streams = append(a.Streams, st)
		for _, ci := range d.Consumers {
			if ci == nil {
				continue
			}
			ci.Stream = name
			if len(ci.Config.Raw) > 0 {
				var err error
				if ci.Config.consumerSettings, err = decodeSettings(ci.Config.Raw); err != nil {
					s.logger.Debug("consumer config of another account not decoded", "account", ref.Name, "stream", name, "consumer", ci.Name, "err", err)
				}
			}
			c := consumerFromInfo(ci, at)
			c.Config = nil
			a.Consumers = append(a.Consumers, c)
		}
	}
	if problem != nil {
		a.Problem = problem.Error()
	}
	return a
}

// judgeAccount judges an account's consumers (lag through t) and streams,
// and the account from its worst stream.
func judgeAccount(a *store.Account, t *lagTracker, at, now time.Time) {
	a.Health = store.Health{Level: store.HealthOK}
	if a.Unread != nil {
		a.Health.Raise(store.HealthWarning, "could not be read: "+a.Unread.Why+" ("+a.Unread.Detail+")")
		return
	}
	if a.Problem != "" {
		a.Health.Raise(store.HealthWarning, "partly read: "+a.Problem)
	}
	byStream := map[string][]int{}
	for i := range a.Consumers {
		c := &a.Consumers[i]
		t.judge(c, true, at, now)
		byStream[c.Stream] = append(byStream[c.Stream], i)
	}
	for i := range a.Streams {
		st := &a.Streams[i]
		idx := byStream[st.Name]
		cs := make([]store.Consumer, 0, len(idx))
		for _, j := range idx {
			cs = append(cs, a.Consumers[j])
		}
		judgeStream(st, cs)
		if st.Health.Level != store.HealthOK && len(st.Health.Reasons) > 0 {
			a.Health.Raise(st.Health.Level, "stream "+st.Name+": "+st.Health.Reasons[0])
		}
	}
}

// pingJSZ sends body to every server's JSZ and hands each answer to
// handle, until want servers answered (0: any number), they went quiet,
// the JSZ timeout, or handle fails. It returns how many answered.
func (s *Sampler) pingJSZ(ctx context.Context, body []byte, want int, handle func(*nats.Msg) error) (int, error) {
	nc := s.cfg.SystemConn
	if !nc.IsConnected() {
		return 0, errors.New("system connection is not connected")
	}
	inbox := nc.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the inbox is ours alone
	if err := nc.PublishRequest(jszSubject, inbox, body); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.JSZTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return 0, fmt.Errorf("flush: %w", err)
	}
	deadline := time.NewTimer(s.cfg.JSZTimeout)
	defer deadline.Stop()
	// Servers answer within milliseconds of each other; stop gathering
	// once all expected did, or they have gone quiet.
	const quiet = 150 * time.Millisecond
	var idle <-chan time.Time
	n := 0
	for {
		select {
		case <-ctx.Done():
			if n == 0 {
				return 0, ctx.Err()
			}
			return n, nil
		case <-deadline.C:
			if n == 0 {
				return 0, errNoJSZ
			}
			return n, nil
		case <-idle:
			return n, nil
		case m := <-replies:
			if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				return 0, errNotSystem
			}
			n++
			if err := handle(m); err != nil {
				return n, err
			}
			if want > 0 && n >= want {
				return n, nil
			}
			idle = time.After(quiet)
		}
	}
}

// setAccounts publishes jetwatch's own account's name and the other
// accounts read this cycle, or why they could not be.
func (s *Sampler) setAccounts(own identity, accounts []store.Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if own.Account != "" {
		s.state.Account = own.Account
	}
	if !s.cfg.AllAccounts {
		return
	}
	s.state.Accounts = accounts
	s.state.AccountsNote = ""
	if accounts == nil && s.state.JSZ != "" {
		s.state.AccountsNote = "other accounts cannot be read: " + s.state.JSZ
	}
}
