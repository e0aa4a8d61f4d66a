package collector

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
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
// the first time, and refreshes it in the background afterwards.
type identityCache struct {
	mu         sync.Mutex
	last       identity
	at         time.Time // when last asked; zero before the first time
	refreshing bool
	problem    string // the last failure, logged once
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

// identify returns who jetwatch is. The first time it asks NATS and waits
// (beside the cycle's reading, each request bounded by RequestTimeout);
// afterwards it answers at once from the cache and, every
// identityRefresh, refreshes it in the background, so that a busy or
// failing NATS never holds a cycle up for it. What cannot be learnt stays
// as last known (empty at first), and the reason is logged once.
func (s *Sampler) identify(ctx context.Context) identity {
	c := &s.ident
	c.mu.Lock()
	first := c.at.IsZero()
	if !first && (c.refreshing || s.cfg.Now().Sub(c.at) < identityRefresh) {
		defer c.mu.Unlock()
		return c.last
	}
	c.refreshing = true
	last := c.last
	c.mu.Unlock()
	if first {
		return s.askIdentity(ctx, last)
	}
	go s.askIdentity(context.WithoutCancel(ctx), last)
	return last
}

// askIdentity asks NATS for the account and domain, updates the cache and
// returns what it holds then.
func (s *Sampler) askIdentity(ctx context.Context, last identity) identity {
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

	c := &s.ident
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last, c.at, c.refreshing = id, s.cfg.Now(), false
	if problem != c.problem {
		if problem != "" {
			s.logger.Info("metrics labels: jetwatch could not learn its account or domain, so those labels keep their last value (empty until learnt); allow the user to publish "+userInfoSubject+" and "+s.cfg.APIPrefix+".INFO", "err", problem)
		}
		c.problem = problem
	}
	return id
}

func (s *Sampler) askUserInfo(ctx context.Context) (account, accountID string, err error) {
	return UserAccount(ctx, s.nc, s.cfg.RequestTimeout)
}

// UserAccount asks the server which account nc's user is in: its name tag
// (or ID when it has none) and its ID (the name, outside operator mode).
// Each request is bounded by timeout.
func UserAccount(ctx context.Context, nc *nats.Conn, timeout time.Duration) (account, accountID string, err error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, userInfoSubject, nil)
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
