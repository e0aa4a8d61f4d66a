package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetwatch/jetwatch/internal/human"
	"github.com/jetwatch/jetwatch/store"
)

// jszSubject asks every server for its JetStream health; only the system
// account may ask.
const jszSubject = "$SYS.REQ.SERVER.PING.JSZ"

// jszRetryCycles is how many cycles to wait before asking JSZ again after it
// was found unavailable, so a non-system user does not pay the wait every
// cycle.
const jszRetryCycles = 30

// jszResponse is the part of a server's JSZ answer jetwatch shows.
type jszResponse struct {
	Server struct {
		Name    string `json:"name"`
		ID      string `json:"id"`
		Cluster string `json:"cluster"`
		Domain  string `json:"domain"`
		Version string `json:"ver"`
	} `json:"server"`
	Data *struct {
		Disabled bool   `json:"disabled"`
		Memory   uint64 `json:"memory"`
		Storage  uint64 `json:"storage"`
		Config   struct {
			MaxMemory  int64 `json:"max_memory"`
			MaxStorage int64 `json:"max_storage"`
		} `json:"config"`
		API struct {
			Total  uint64 `json:"total"`
			Errors uint64 `json:"errors"`
		} `json:"api"`
		Streams   int    `json:"streams"`
		Consumers int    `json:"consumers"`
		Messages  uint64 `json:"messages"`
		Bytes     uint64 `json:"bytes"`
		Accounts  []struct {
			Name            string `json:"name"`
			ID              string `json:"id"`
			Memory          uint64 `json:"memory"`
			Storage         uint64 `json:"storage"`
			ReservedMemory  uint64 `json:"reserved_memory"`
			ReservedStorage uint64 `json:"reserved_storage"`
		} `json:"account_details"`
		Meta *struct {
			Leader   string `json:"leader"`
			Replicas []struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Offline bool   `json:"offline"`
			} `json:"replicas"`
		} `json:"meta_cluster"`
	} `json:"data"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// sampleServers returns every server's JetStream health, servers that
// stopped answering included as down, or nil when JSZ is not available,
// in which case the state says why.
func (s *Sampler) sampleServers(ctx context.Context, at time.Time, note func(kind, key, msg string)) []store.Server {
	s.mu.Lock()
	if s.jszSkip > 0 {
		s.jszSkip--
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	servers, peers, err := s.requestJSZ(ctx)
	s.mu.Lock()
	if err != nil {
		if errors.Is(err, errNoJSZ) || errors.Is(err, errNotSystem) {
			// Likely a user outside the system account: do not pay the
			// wait every cycle. Anything else (a reconnect) is retried
			// next cycle.
			s.jszSkip = jszRetryCycles
		}
		why := fmt.Sprintf("per-server JetStream health is unavailable (%v): connect jetwatch with a system-account user (--system-creds, --system-user or --system-context) to see it", err)
		if s.state.JSZ != why {
			s.logger.Info("per-server health unavailable", "err", err)
		}
		s.state.JSZ = why
		s.mu.Unlock()
		return nil
	}
	s.state.JSZ = ""
	s.mu.Unlock()
	return s.withDown(ctx, servers, peers, at, note)
}

// serverForgetAfter is how long a server that stopped answering stays
// listed as down once no JetStream meta peer names it any more (it was
// removed from the cluster, or never was in one).
const serverForgetAfter = time.Hour

// withDown adds to the servers that answered those known before or named
// as meta peers that did not, as down since they last answered. Runs
// within a cycle (s.cycle held).
func (s *Sampler) withDown(ctx context.Context, answered []store.Server, peers []string, at time.Time, note func(kind, key, msg string)) []store.Server {
	if !s.serversLoaded {
		stored, err := s.db.Servers(ctx)
		if err != nil {
			note("store", "servers", "reading the servers last seen failed: "+err.Error())
		} else {
			s.servers, s.serversLoaded = stored, true
		}
	}
	out := answered
	seen := map[string]bool{}
	for _, srv := range answered {
		seen[srv.Name] = true
	}
	down := func(last store.Server, since time.Time) {
		srv := last
		srv.SampledAt, srv.DownSince, srv.MetaLeader = at, &since, ""
		srv.Health = store.Health{Level: store.HealthOK}
		srv.Health.Raise(store.HealthCritical, fmt.Sprintf("down: no answer since %s (%s ago)",
			since.UTC().Format(time.TimeOnly+" UTC"), human.Duration(at.Sub(since))))
		out = append(out, srv)
		seen[srv.Name] = true
		note("server_down", "server "+srv.Name, fmt.Sprintf("server %s did not answer %s: %s", srv.Name, jszSubject, srv.Health.Reasons[0]))
	}
	for _, last := range s.servers {
		if seen[last.Name] {
			continue
		}
		since := last.SampledAt
		if last.DownSince != nil {
			since = *last.DownSince
		}
		if slices.Contains(peers, last.Name) || at.Sub(since) < serverForgetAfter {
			down(last, since)
		}
	}
	for _, p := range peers {
		if !seen[p] {
			down(store.Server{Name: p}, at)
		}
	}
	slices.SortFunc(out, func(a, b store.Server) int { return strings.Compare(a.Name, b.Name) })
	s.servers = out
	return out
}

var (
	errNoJSZ     = errors.New("no server answered " + jszSubject)
	errNotSystem = errors.New("no responders: this user is not in the system account")
)

// requestJSZ gathers the servers' JSZ answers, and the names of the
// JetStream meta peers they know of.
func (s *Sampler) requestJSZ(ctx context.Context) ([]store.Server, []string, error) {
	var out []store.Server
	var peers []string
	now := s.cfg.Now().UTC()
	// With accounts, each server also gives every account's use of it
	// (for the jetstream_account_* metrics); without streams, that stays
	// small.
	_, err := s.pingJSZ(ctx, []byte(`{"accounts":true}`), 0, func(m *nats.Msg) error {
		var r jszResponse
		if err := json.Unmarshal(m.Data, &r); err != nil {
			s.logger.Warn("malformed JSZ answer ignored", "err", err)
			return nil
		}
		if r.Error != nil {
			return fmt.Errorf("server %s answered: %s", r.Server.Name, r.Error.Description)
		}
		out = append(out, serverFromJSZ(&r, now))
		if r.Data != nil && r.Data.Meta != nil {
			for _, p := range r.Data.Meta.Replicas {
				// A peer the server has not heard of yet is named by
				// id only ("Server name unknown at this time ...").
				if p.Name != "" && !strings.HasPrefix(p.Name, "Server name unknown") && !slices.Contains(peers, p.Name) {
					peers = append(peers, p.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, peers, nil
}

func serverFromJSZ(r *jszResponse, at time.Time) store.Server {
	srv := store.Server{
		Name: r.Server.Name, ID: r.Server.ID, Cluster: r.Server.Cluster,
		Version: r.Server.Version, Domain: r.Server.Domain,
		Health: store.Health{Level: store.HealthOK}, SampledAt: at,
	}
	d := r.Data
	if d == nil {
		srv.Health.Raise(store.HealthWarning, "answered without JetStream data")
		return srv
	}
	srv.Disabled = d.Disabled
	srv.Memory, srv.Storage = d.Memory, d.Storage
	srv.MaxMemory, srv.MaxStorage = d.Config.MaxMemory, d.Config.MaxStorage
	srv.Streams, srv.Consumers = d.Streams, d.Consumers
	srv.Messages, srv.Bytes = d.Messages, d.Bytes
	srv.APITotal, srv.APIErrors = d.API.Total, d.API.Errors
	for _, a := range d.Accounts {
		srv.Accounts = append(srv.Accounts, store.ServerAccount{
			Name: a.Name, ID: a.ID, Memory: a.Memory, Storage: a.Storage,
			ReservedMemory: a.ReservedMemory, ReservedStorage: a.ReservedStorage,
		})
	}
	if d.Disabled {
		srv.Health.Raise(store.HealthWarning, "JetStream is disabled on this server")
	}
	if d.Meta != nil {
		srv.MetaLeader = d.Meta.Leader
		if d.Meta.Leader == "" {
			srv.Health.Raise(store.HealthCritical, "no meta leader: streams and consumers cannot be created or changed")
		}
		for _, p := range d.Meta.Replicas {
			if p.Offline {
				srv.Health.Raise(store.HealthWarning, "meta peer "+p.Name+" is offline")
			}
		}
	}
	if d.Config.MaxStorage > 0 {
		if pct := percent(d.Storage, uint64(d.Config.MaxStorage)); pct >= 90 {
			srv.Health.Raise(store.HealthCritical, fmt.Sprintf("file storage %.0f%% used", pct))
		} else if pct >= 75 {
			srv.Health.Raise(store.HealthWarning, fmt.Sprintf("file storage %.0f%% used", pct))
		}
	}
	if d.Config.MaxMemory > 0 {
		if pct := percent(d.Memory, uint64(d.Config.MaxMemory)); pct >= 90 {
			srv.Health.Raise(store.HealthCritical, fmt.Sprintf("memory storage %.0f%% used", pct))
		}
	}
	return srv
}
