package web

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// DeadLetterAccount is one more account whose dead letters jetwatch
// captures (serve's --account NAME=CONTEXT): the reads of its own index
// partition. Its pages and API answer under ?account=NAME.
type DeadLetterAccount struct {
	// Name labels the account in URLs and on the pages. Required; letters,
	// digits, - and _ (serve checks it).
	Name string
	// DeadLetters reads the account's index partition. Required.
	DeadLetters DeadLetters
	// Actions redelivers and discards the account's dead letters, within
	// the account. Without it those answer 503.
	Actions DeadLetterActions
	// Index reports the account's dead-letter index. Without it the
	// account's page shows no index banners.
	Index DeadLetterIndex
	// NATSState reports the account's own connection. Required.
	NATSState func() NATSState
	// NATSAccount is the account's name or id as NATS answered which
	// account its user is in; empty until known. With --all-accounts it
	// links the account's dead letters to their read-only stream and
	// consumer pages. Optional.
	NATSAccount func() string
	// Refused says why jetwatch refuses to capture the account (say, its
	// user is in jetwatch's own account); empty while it does not. Nil:
	// never refused.
	Refused func() string
	// Bulk runs bulk jobs on the account's dead letters, within the
	// account. Without it /redeliveries?account= answers 503.
	Bulk BulkJobs
}

// deadLetterSource is the account a dead-letter request is about: the
// main account's reads, actions and index, or those of ?account=NAME.
type deadLetterSource struct {
	// account is "" for the main account.
	account string
	reads   DeadLetters
	// actions is nil where redelivery and discard are not served.
	actions DeadLetterActions
	index   DeadLetterIndex
	// nats is the account's own connection; nil for the main account,
	// whose connection every page reports.
	nats func() NATSState
	// refused is the account's Refused; nil for the main account.
	refused func() string
	// bulk is nil where bulk jobs are not served.
	bulk BulkJobs
	// natsAccount is the account's name or id as NATS knows it; nil
	// when unknown.
	natsAccount func() string
}

// deadLetterSource resolves ?account=: absent is the main account, so
// every URL from before accounts keeps its meaning; a name not configured
// is a 404 naming it (quoted and cut) and the accounts there are.
func (s *Server) deadLetterSource(c echo.Context) (deadLetterSource, error) {
	name := c.QueryParam("account")
	if name == "" {
		if s.cfg.DeadLetters == nil {
			return deadLetterSource{}, errNoDeadLetters
		}
		return deadLetterSource{reads: s.cfg.DeadLetters, actions: s.cfg.DeadLetterActions, index: s.cfg.DeadLetterIndex, bulk: s.cfg.Bulk}, nil
	}
	for _, a := range s.cfg.DeadLetterAccounts {
		if a.Name == name {
			return deadLetterSource{account: a.Name, reads: a.DeadLetters, actions: a.Actions, index: a.Index, nats: a.NATSState, refused: a.Refused, bulk: a.Bulk,
				natsAccount: a.NATSAccount}, nil
		}
	}
	return deadLetterSource{}, notFoundError{"no account " + shortQuote(name) + " among those whose dead letters jetwatch captures: " + s.accountNames()}
}

// accountNames lists the accounts ?account= takes, for the 404.
func (s *Server) accountNames() string {
	if len(s.cfg.DeadLetterAccounts) == 0 {
		return "it captures its own account's only (serve's --account NAME=CONTEXT adds more); leave account out"
	}
	names := make([]string, 0, len(s.cfg.DeadLetterAccounts))
	for _, a := range s.cfg.DeadLetterAccounts {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ") + ", or leave account out for its own"
}

// actionsOf are src's actions, or the 503 saying they are not served.
func actionsOf(src deadLetterSource) (DeadLetterActions, error) {
	if src.actions != nil {
		return src.actions, nil
	}
	if src.account != "" {
		return nil, unavailableError{"redelivery and discard of account " + src.account + "'s dead letters are not served by this jetwatch: act on them with a client of that account; nothing was changed"}
	}
	return nil, errNoDeadLetters
}

// bulkOf resolves ?account= for a bulk-job request: the account's runner
// (jobs, their ids and the dead letters they act on are each account's
// own), or the 503 saying bulk jobs are not served there.
func (s *Server) bulkOf(c echo.Context) (BulkJobs, string, error) {
	src, err := s.deadLetterSource(c)
	if err != nil {
		return nil, "", err
	}
	if src.bulk == nil {
		if src.account != "" {
			return nil, "", unavailableError{"bulk jobs on account " + src.account + "'s dead letters are not served by this jetwatch; nothing was changed"}
		}
		return nil, "", errNoBulk
	}
	return src.bulk, src.account, nil
}

// streamAccount is the account, as the last cycle read it, that src's
// user is in: its stream and consumer pages are then the read-only ones
// of that account. Empty for the main account, without --all-accounts,
// or before NATS said which account the user is in.
func (s *Server) streamAccount(src deadLetterSource) string {
	if src.account == "" || src.natsAccount == nil {
		return ""
	}
	id := src.natsAccount()
	if id == "" {
		return ""
	}
	st := s.cfg.SamplerState()
	if !st.AllAccounts {
		return ""
	}
	for _, a := range st.Accounts {
		if a.Name == id || a.ID == id {
			return a.Name
		}
	}
	return ""
}

// hasAccount says whether name is one of the DeadLetterAccounts.
func (s *Server) hasAccount(name string) bool {
	for _, a := range s.cfg.DeadLetterAccounts {
		if a.Name == name {
			return true
		}
	}
	return false
}
