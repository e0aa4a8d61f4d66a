package collector

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// identity is what the metrics' account and domain labels say: the account
// of jetwatch's user and the JetStream domain its API prefix reaches.
type identity struct {
	// Account is the account's name tag, or its ID when it has none, as
	// prometheus-nats-exporter's account and account_name labels.
	Account   string
	AccountID string
	Domain    string
}

// userInfoSubject answers any user with its own account; the server
// serves it whenever it has a system account (the default).
const userInfoSubject = "$SYS.REQ.USER.INFO"

// identityRefresh is how long an identity is trusted before it is asked
// again: it changes only with the connection's credentials or a
// reconfigured server.
const identityRefresh = 5 * time.Minute

// identityCache keeps the last identity, so a cycle asks NATS for it only
// every identityRefresh, or after a reconnect to another server.
type identityCache struct {
	mu       sync.Mutex
	last     identity
	at       time.Time
	serverID string // the connected server when last asked
	problem  string // the last failure, logged once
}

type userInfoAnswer struct {
	Data *struct {
		Account     string `json:"account"`
		AccountName string `json:"account_name"`
	} `json:"data"`
	Error *struct {
		Description string `json:"description"`
	} `json:"error"`
}

type accountInfoAnswer struct {
	Domain string              `json:"domain"`
	Error  *jetstream.APIError `json:"error"`
}

func (a *accountInfoAnswer) apiError() *jetstream.APIError { return a.Error }

// identify returns who jetwatch is, asking NATS when the cached answer is
// old. What cannot be learnt stays as last known (empty at first), and the
// reason is logged once: the labels then stay empty rather than the cycle
// failing.
func (s *Sampler) identify(ctx context.Context) identity {
	c := &s.ident
	now := s.cfg.Now()
	serverID := s.nc.ConnectedServerId()
	c.mu.Lock()
	if !c.at.IsZero() && now.Sub(c.at) < identityRefresh && c.serverID == serverID {
		defer c.mu.Unlock()
		return c.last
	}
	last := c.last
	c.mu.Unlock()

	var problems []error
	id := last
	if account, accountID, err := s.askUserInfo(ctx); err != nil {
		problems = append(problems, fmt.Errorf("account labels: %w", err))
	} else {
		id.Account, id.AccountID = account, accountID
	}
	var info accountInfoAnswer
	if err := apiRequest(ctx, s.nc, s.cfg.RequestTimeout, s.cfg.APIPrefix+".INFO", struct{}{}, &info); err != nil {
		problems = append(problems, fmt.Errorf("domain label: %w", err))
	} else {
		id.Domain = info.Domain
	}
	problem := ""
	if err := errors.Join(problems...); err != nil {
		problem = err.Error()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.last, c.at, c.serverID = id, now, serverID
	if problem != c.problem {
		if problem != "" {
			s.logger.Info("metrics labels left empty: jetwatch could not learn its account or domain; allow the user to publish "+userInfoSubject+" and "+s.cfg.APIPrefix+".INFO", "err", problem)
		}
		c.problem = problem
	}
	return id
}

func (s *Sampler) askUserInfo(ctx context.Context) (account, accountID string, err error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	msg, err := s.nc.RequestWithContext(rctx, userInfoSubject, nil)
	if err != nil {
		return "", "", fmt.Errorf("ask %s: %w", userInfoSubject, err)
	}
	var a userInfoAnswer
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		return "", "", fmt.Errorf("decode %s answer: %w", userInfoSubject, err)
	}
	if a.Error != nil {
		return "", "", fmt.Errorf("%s answered: %s", userInfoSubject, a.Error.Description)
	}
	if a.Data == nil || a.Data.Account == "" {
		return "", "", fmt.Errorf("%s answered without an account", userInfoSubject)
	}
	return cmp.Or(a.Data.AccountName, a.Data.Account), a.Data.Account, nil
}
