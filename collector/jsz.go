package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

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
		Meta      *struct {
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

// sampleServers returns per-server health, or nil when JSZ is not
// available, in which case the state says why.
func (s *Sampler) sampleServers(ctx context.Context, note func(kind, msg string)) []store.Server {
	s.mu.Lock()
	if s.jszSkip > 0 {
		s.jszSkip--
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	servers, err := s.requestJSZ(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.jszSkip = jszRetryCycles
		why := fmt.Sprintf("per-server JetStream health is unavailable (%v): connect jetwatch with a system-account user (--system-creds, --system-user or --system-context) to see it", err)
		if s.state.JSZ != why {
			s.logger.Info("per-server health unavailable", "err", err)
		}
		s.state.JSZ = why
		return nil
	}
	s.state.JSZ = ""
	return servers
}

var errNoJSZ = errors.New("no server answered " + jszSubject)

func (s *Sampler) requestJSZ(ctx context.Context) ([]store.Server, error) {
	nc := s.cfg.SystemConn
	if !nc.IsConnected() {
		return nil, errors.New("system connection is not connected")
	}
	inbox := nc.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(jszSubject, inbox, []byte(`{}`)); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.JSZTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	deadline := time.NewTimer(s.cfg.JSZTimeout)
	defer deadline.Stop()
	// Servers answer within milliseconds of each other; stop gathering once
	// they have gone quiet rather than always waiting the full timeout.
	const quiet = 150 * time.Millisecond
	var idle <-chan time.Time
	var out []store.Server
	now := s.cfg.Now().UTC()
	for {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-deadline.C:
			if len(out) == 0 {
				return nil, errNoJSZ
			}
			return out, nil
		case <-idle:
			return out, nil
		case m := <-replies:
			if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				return nil, errors.New("no responders: this user is not in the system account")
			}
			var r jszResponse
			if err := json.Unmarshal(m.Data, &r); err != nil {
				s.logger.Warn("malformed JSZ answer ignored", "err", err)
				continue
			}
			if r.Error != nil {
				return nil, fmt.Errorf("server %s answered: %s", r.Server.Name, r.Error.Description)
			}
			out = append(out, serverFromJSZ(&r, now))
			idle = time.After(quiet)
		}
	}
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
