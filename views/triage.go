package views

import (
	"net/url"
	"strconv"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// Kinds of problem the overview's triage lists, in the order it lists
// them within a severity.
const (
	ProblemAlert         = "alert"          // an alert rule firing
	ProblemBreaker       = "breaker"        // a breaker open or half-open
	ProblemUnread        = "unread"         // a stream or consumer the sampler could not read
	ProblemStream        = "stream"         // a stream's own health: replicas, limits, leader
	ProblemStalled       = "stalled"        // a consumer someone reads, with nothing acknowledged
	ProblemStopped       = "stopped"        // a consumer with pending messages and nobody consuming
	ProblemFallingBehind = "falling-behind" // a consumer whose backlog grows: arrivals outpace acks
	ProblemPaused        = "paused"         // a consumer paused on the server until a time
	ProblemConsumer      = "consumer"       // a consumer's other health: leader, replicas, ack limit
	ProblemDeadLetters   = "dead-letters"   // dead letters pending in another --account's partition
)

var problemOrder = []string{ProblemAlert, ProblemBreaker, ProblemUnread, ProblemStream, ProblemStalled, ProblemStopped, ProblemFallingBehind, ProblemPaused, ProblemConsumer, ProblemDeadLetters}

// ProblemRank orders kinds as the triage lists them.
func ProblemRank(kind string) int {
	for i, k := range problemOrder {
		if k == kind {
			return i
		}
	}
	return len(problemOrder)
}

// ProblemLabel is a kind in the operator's words.
func ProblemLabel(kind string) string {
	switch kind {
	case ProblemAlert:
		return "alert firing"
	case ProblemBreaker:
		return "breaker"
	case ProblemUnread:
		return "unreadable"
	case ProblemStream:
		return "stream"
	case ProblemStalled:
		return "stalled"
	case ProblemStopped:
		return "stopped"
	case ProblemFallingBehind:
		return "falling behind"
	case ProblemPaused:
		return "paused"
	case ProblemConsumer:
		return "consumer"
	case ProblemDeadLetters:
		return "dead letters"
	}
	return kind
}

// Problem is one thing wrong now, as the triage lists it.
type Problem struct {
	// Kind is one of the Problem* kinds.
	Kind string
	// Severity is store.HealthCritical or store.HealthWarning.
	Severity string
	// Subject names what is wrong: a stream, "stream / consumer", a rule.
	Subject string
	// Text says what is wrong, in the operator's words.
	Text string
	// Account is the other account the problem is in; "" for jetwatch's
	// own.
	Account string
	// Link is the page to act from.
	Link string
	// Since is when it began; zero when unknown.
	Since time.Time
}

// DeadLetterSummary is the dead-letter tile of the triage.
type DeadLetterSummary struct {
	// Available is false when jetwatch runs without its dead-letter reads.
	Available bool
	// Pending dead letters wait for an operator; PendingMore says there
	// are more than Pending (the count stops at a bound).
	Pending     int
	PendingMore bool
	// PerMinute counts arrivals in each minute of the last hour, oldest
	// first; LastHour is their sum.
	PerMinute []int
	LastHour  int
	// Elsewhere counts the dead letters pending in the other accounts
	// jetwatch captures (--account), each also a problem of the triage;
	// ElsewhereMore says one of their counts stopped at its bound.
	Elsewhere     int
	ElsewhereMore bool
}

// RatePerMinute is the average arrivals per minute over the last hour.
func (d DeadLetterSummary) RatePerMinute() float64 {
	if len(d.PerMinute) == 0 {
		return 0
	}
	return float64(d.LastHour) / float64(len(d.PerMinute))
}

// Triage answers "what is wrong now" at the top of the overview.
type Triage struct {
	// Problems are worst first; at most a screenful, the rest counted in
	// More.
	Problems []Problem
	More     int
	// Firing counts the alert instances firing; Alerts is false without
	// alerting configured.
	Firing int
	Alerts bool
	// OpenBreakers counts breakers open or half-open.
	OpenBreakers int
	DeadLetters  DeadLetterSummary
}

// Total is how many problems there are, listed or not.
func (t Triage) Total() int { return len(t.Problems) + t.More }

// Worst is the severity of the worst problem, "" when there is none.
func (t Triage) Worst() string {
	worst := ""
	for _, p := range t.Problems {
		if p.Severity == store.HealthCritical {
			return p.Severity
		}
		worst = p.Severity
	}
	return worst
}

// NavBadges are the counts the navigation shows on every page.
type NavBadges struct {
	Problems        int
	ProblemsLevel   string
	Firing          int
	DeadLetters     int
	DeadLettersMore bool
	OpenBreakers    int
}

// Badges is the navigation's part of a triage.
func (t Triage) Badges() *NavBadges {
	return &NavBadges{Problems: t.Total(), ProblemsLevel: t.Worst(), Firing: t.Firing,
		DeadLetters: t.DeadLetters.Pending + t.DeadLetters.Elsewhere, DeadLettersMore: t.DeadLetters.PendingMore || t.DeadLetters.ElsewhereMore,
		OpenBreakers: t.OpenBreakers}
}

// PendingDeadLettersURL lists the dead letters waiting for an operator.
const PendingDeadLettersURL = "/dead-letters?status=pending"

// StreamTable is one page of the overview's stream table and how to get
// to the others.
type StreamTable struct {
	Rows []StreamRow
	// Total streams match Search; the page shows From..From+len(Rows)-1
	// of them, counting from 1.
	Total, From int
	Search      string
	Sort        string
	ShowOwn     bool
	// Account is the overview's ?account=, kept by every link of the
	// table: "" for the default (every account when every account is
	// sampled, else jetwatch's own).
	Account string
	// ShowAccount adds the account column: rows of several accounts.
	ShowAccount bool
	// PrevURL and NextURL are the neighbouring pages, empty at the ends.
	PrevURL, NextURL string
}

// TableURL is the overview's URL for a table state: only what differs
// from the defaults is in the query, so links stay short and shareable.
func TableURL(account string, own bool, search, sort string, page int) string {
	q := url.Values{}
	if account != "" {
		q.Set("account", account)
	}
	if own {
		q.Set("own", "1")
	}
	if search != "" {
		q.Set("q", search)
	}
	if sort != "" && sort != store.SortHealth {
		q.Set("sort", sort)
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

// SortURL is the table sorted by sort, from its first page.
func (t StreamTable) SortURL(sort string) string {
	return TableURL(t.Account, t.ShowOwn, t.Search, sort, 1)
}

// OwnURL is the table with jetwatch's own streams shown or hidden.
func (t StreamTable) OwnURL(own bool) string { return TableURL(t.Account, own, t.Search, t.Sort, 1) }

// AriaSort is the aria-sort of a column header.
func (t StreamTable) AriaSort(sort string) string {
	if t.Sort != sort {
		return "none"
	}
	if sort == store.SortName {
		return "ascending"
	}
	return "descending"
}

// navBadgeNames are the navigation's counts.
var navBadgeNames = []string{"problems", "dead-letters", "breakers", "alerts"}

// Get is one of the navigation's counts as shown: its text (empty when
// zero), its level for colour, and its title.
func (b NavBadges) Get(name string) (n, level, title string) {
	var v int
	switch name {
	case "problems":
		v, level = b.Problems, badgeLevel(b.ProblemsLevel)
		title = Count(v) + " problems: see what is wrong now at the top of the overview"
	case "dead-letters":
		v, level = b.DeadLetters, store.HealthWarning
		title = Count(v) + " dead letters wait for an operator"
		if b.DeadLettersMore {
			title = "more than " + title
		}
	case "breakers":
		v, level = b.OpenBreakers, store.HealthCritical
		title = Count(v) + " breakers open or half-open"
	case "alerts":
		v, level = b.Firing, store.HealthCritical
		title = Count(v) + " alerts firing"
	}
	if v == 0 {
		return "", level, ""
	}
	n = Count(v)
	if name == "dead-letters" && b.DeadLettersMore {
		n += "+"
	}
	return n, level, title
}

// badgeLevel is the colour class of a count's badge.
func badgeLevel(level string) string {
	if level == "" {
		return store.HealthWarning
	}
	return level
}

// tileLevel is a triage tile's colour: level when on, else quiet.
func tileLevel(on bool, level string) string {
	if !on {
		return "quiet"
	}
	return badgeLevel(level)
}

// sortLabel says in words how the stream table is sorted.
func sortLabel(sort string) string {
	switch sort {
	case store.SortName:
		return "by name"
	case store.SortMessages:
		return "most messages first"
	case store.SortBytes:
		return "largest first"
	case store.SortRate:
		return "busiest first"
	case store.SortConsumers:
		return "most consumers first"
	}
	return "worst first"
}

// retentionTitle explains a retention policy.
func retentionTitle(retention string) string {
	switch retention {
	case "limits":
		return "limits: messages are kept until a limit (count, size, age) removes the oldest"
	case "interest":
		return "interest: a message is removed once every consumer has acknowledged it"
	case "workqueue":
		return "workqueue: a message is removed once one consumer has acknowledged it"
	}
	return retention
}

// apiErrorsTitle explains a server's API error count.
func apiErrorsTitle(errs, total uint64) string {
	if total == 0 {
		return "no JetStream API requests answered since the server started"
	}
	return Exact(errs) + " of " + Exact(total) + " JetStream API requests answered with an error since the server started (" +
		Pct(100*float64(errs)/float64(total)) + ")"
}
