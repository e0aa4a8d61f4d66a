package views

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jetwatch/jetwatch/journey"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/dlq/index"
	"github.com/jetwatch/jetwatch/store"
)

// DeadLetterList is the dead-letters page.
type DeadLetterList struct {
	Filter    store.DeadLetterFilter
	SinceText string
	UntilText string
	Items     []store.DeadLetter
	Matched   int
	// MatchedMore says Matched is a floor: counting stopped there.
	MatchedMore bool
	PendingMore bool
	NextURL     string
	GroupsURL   string
	ExportURL   string
	Problem     string // a bad filter, in words
	Pending     int
	CSRF        string
	FlashTitle  string
	// CanAct is set when the operator may run bulk jobs.
	CanAct bool
	// Index is how the dead-letter index stands; nil when unknown.
	Index *index.Status
	// Jobs are the bulk jobs not finished (running or paused), newest
	// first.
	Jobs []bulk.Job
	// Account is the --account shown; empty for the main account.
	Account string
	// Accounts are the accounts to choose from; none without --account.
	Accounts []AccountChoice
	// AccountDown says the shown account's connection is down; empty
	// when it is up (or for the main account, whose state every page
	// shows).
	AccountDown string
	// AccountRefused says why jetwatch captures nothing of the shown
	// account; empty when it does.
	AccountRefused string
}

// AccountChoice is one account of the dead-letters page's selector.
type AccountChoice struct {
	Label, URL string
	Current    bool
}

// deadLetters is n dead letter(s), in words.
func deadLetters(n uint64) string {
	if n == 1 {
		return "1 dead letter"
	}
	return strconv.FormatUint(n, 10) + " dead letters"
}

// IndexStalledText is the banner of a stalled index.
func IndexStalledText(st index.Status) string {
	return deadLetters(st.Lag) + " not indexed yet: " + st.Why
}

// UnindexableText heads the list of dead letters the index could not store.
func UnindexableText(st index.Status) string {
	verb := " could not be indexed; the index moved past them. Their messages are still in the DLQ stream:"
	if st.Unindexable == 1 {
		verb = " could not be indexed; the index moved past it. Its message is still in the DLQ stream:"
	}
	return deadLetters(uint64(st.Unindexable)) + verb
}

// DeadLetterGroups is the grouped view.
type DeadLetterGroups struct {
	Filter store.DeadLetterFilter
	// Account is the --account shown; empty for the main account.
	Account string
	Groups  []GroupRow
	ListURL string
	Window  string
}

// GroupRow is one fingerprint group with its trend.
type GroupRow struct {
	store.DeadLetterGroup
	Spark   Sparkline
	ListURL string
}

// DeadLetterDetail is one dead letter's page.
type DeadLetterDetail struct {
	D       store.DeadLetter
	History []dlq.Action
	Headers []HeaderRow
	Payload PayloadView
	// TraceID is the trace id in the message's traceparent, as it is;
	// TraceValid says it is a well-formed W3C trace id, and only then is
	// TraceURL (the link to the tracing UI) set.
	TraceID    string
	TraceValid bool
	TraceURL   string
	// JourneyKeys are the trace id and correlation values the dead letter
	// carries: each links to its journey.
	JourneyKeys []journey.Key
	CSRF        string
	Flash       string
	FlashBad    bool
	// Preview is set when an edit awaits confirmation.
	Preview *EditPreview
	// CanAct is set when the operator may redeliver and discard.
	CanAct bool
	// Redacted says some header or payload values are masked.
	Redacted bool
	// PayloadHidden says the payload is hidden from this viewer.
	PayloadHidden bool
	// Account is the --account the dead letter is in; empty for the main
	// account's. Its stream and consumer link to the read-only pages of
	// StreamAccount when that is set, and are not linked otherwise (the
	// plain pages show the main account's).
	Account string
	// StreamAccount is the account, as the sampler read it (--all-accounts),
	// that Account's user is in; empty when it was not read.
	StreamAccount string
	// ActionsUnserved says this jetwatch does not redeliver or discard
	// the account's dead letters.
	ActionsUnserved bool
}

// HeaderRow is one header value.
type HeaderRow struct{ Name, Value string }

// EditPreview is an edit shown as a diff before it is sent.
type EditPreview struct {
	Subject string
	// Payload is the edited payload checked against the original: its
	// Send is what the confirm form sends, in base64, so that no
	// browser's rewriting of line ends in form fields touches a byte.
	Payload     PayloadEdit
	HeadersText string
	HeaderDiff  DiffView
}

// PayloadBase64 is what the edit sends, for the confirm form.
func (p EditPreview) PayloadBase64() string { return base64.StdEncoding.EncodeToString(p.Payload.Send) }

// HeaderRows flattens headers for display, sorted by name.
func HeaderRows(h map[string][]string) []HeaderRow {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var rows []HeaderRow
	for _, k := range names {
		for _, v := range h[k] {
			rows = append(rows, HeaderRow{k, v})
		}
	}
	return rows
}

// HeadersText renders headers one "Name: value" per line, for editing.
func HeadersText(h map[string][]string) string {
	var b strings.Builder
	for _, r := range HeaderRows(h) {
		if dlq.IsEnvelopeHeader(r.Name) || strings.HasPrefix(r.Name, "Nats-") {
			continue
		}
		b.WriteString(r.Name + ": " + r.Value + "\n")
	}
	return b.String()
}

// DeadLetterURL is the path of a dead letter's page.
func DeadLetterURL(id uint64) string { return "/dead-letters/" + strconv.FormatUint(id, 10) }

// AccountURL is u for the dead letters of account: with ?account= (or
// &account=) added unless account is empty, the main account.
func AccountURL(u, account string) string {
	if account == "" {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.Values{"account": {account}}.Encode()
}

// DeadLetterQuery is FilterQuery with the account, for the links of an
// account's dead-letter pages.
func DeadLetterQuery(f store.DeadLetterFilter, account string) url.Values {
	q := FilterQuery(f)
	if account != "" {
		q.Set("account", account)
	}
	return q
}

// FilterQuery renders a filter as URL query values.
func FilterQuery(f store.DeadLetterFilter) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("stream", f.Stream)
	set("consumer", f.Consumer)
	set("subject", f.Subject)
	set("reason", f.Reason)
	set("status", f.Status)
	set("q", f.Q)
	// To the nanosecond: "since 1h" resolved once must select the same
	// dead letters from every link and form that carries it (a bulk job's
	// start most of all).
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	return q
}

// searchPlaceholder says what the search box searches: payloads only for
// those who may see them.
func searchPlaceholder(payloadsHidden bool) string {
	if payloadsHidden {
		return "words in subject or error"
	}
	return "words in subject, error or payload"
}

// Shorten cuts s to n runes for table cells; the full text is in a title.
func Shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

func diffClass(op string) string {
	switch op {
	case "+":
		return "add"
	case "-":
		return "del"
	}
	return "same"
}

func actionText(a dlq.Action) string {
	switch a.Action {
	case dlq.ActionRedeliver:
		s := "redelivered to " + a.Subject
		if a.Edited {
			s = "edited and " + s
		}
		return s + " (attempt " + strconv.Itoa(a.Attempt) + ")"
	case dlq.ActionDiscard:
		if a.Note != "" {
			return "discarded: " + a.Note
		}
		return "discarded"
	case dlq.ActionRedeliverStart:
		return "redelivery to " + a.Subject + " started, not ended (attempt " + strconv.Itoa(a.Attempt) + ")"
	case dlq.ActionRedeliverFail:
		return "redelivery to " + a.Subject + " failed, nothing sent: " + a.Note
	}
	return a.Action
}

func actionResult(a dlq.Action) string {
	if a.AckStream == "" {
		return "—"
	}
	s := "stored in " + a.AckStream + " #" + u64(a.AckSeq)
	if a.Duplicate {
		s += " (duplicate: sent once before)"
	}
	return s
}

// DeadLetterIDText is a dead letter id as text.
func DeadLetterIDText(id uint64) string { return u64(id) }

// BulkPlan is the dry run of a bulk job, with the form that starts it.
type BulkPlan struct {
	Request     bulk.Request
	Plan        bulk.Plan
	CSRF        string
	FilterQuery string
}

// BulkJobView is a bulk job's progress page.
type BulkJobView struct {
	Job  bulk.Job
	CSRF string
	// CanAct is set when the operator may pause, resume or cancel.
	CanAct bool
}

// Progress is the share of a job done, 0-100.
func (v BulkJobView) Progress() float64 { return JobProgress(v.Job) }

// CountText renders a count that may have stopped at a limit.
func CountText(n int, more bool) string {
	if more {
		return strconv.Itoa(n) + "+"
	}
	return strconv.Itoa(n)
}
