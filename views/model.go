package views

import (
	"net/url"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// Page is what the layout of every page needs.
type Page struct {
	Title string
	// Nav is the top navigation item to highlight: "overview", ...
	Nav     string
	Version string
	// CSSURL, JSURL and IconURL are the content-hashed asset URLs.
	CSSURL, JSURL, IconURL string
	// RefreshSeconds is the live refresh period.
	RefreshSeconds int
	// LiveURL is fetched to refresh the page's live region; empty for none.
	LiveURL string
	NATS    NATSBanner
	// Now is when the page is rendered; relative times count from it.
	Now time.Time
	// User and Role name the signed-in operator; empty without sign-in.
	User, Role string
	// CanSignOut is set for a password session.
	CanSignOut bool
	// CanAct is set when the operator may redeliver, discard and run bulk
	// jobs; the pages hide those forms otherwise.
	CanAct bool
	// CSRF is the token forms post back.
	CSRF string
	// Anonymous is set for a visitor who has not signed in (the error
	// pages they can reach): the layout then shows nothing about the NATS
	// deployment (server URL, name, connection errors), nor jetwatch's
	// version.
	Anonymous bool
	// Badges are the counts in the navigation; nil shows none.
	Badges *NavBadges
	// AllAccounts shows the accounts page in the navigation.
	AllAccounts bool
}

// NATSBanner is the connection state shown on every page.
type NATSBanner struct {
	Connected bool
	// Since is when the current state began.
	Since      time.Time
	LastError  string
	Server     string
	ServerName string
}

// SamplerInfo is what the sampler reports about its last cycle.
type SamplerInfo struct {
	FirstCycleDone bool
	LastCycleAt    time.Time
	LastDuration   time.Duration
	Errors         []string
	// JSZ is empty while per-server health is available, else why not.
	JSZ      string
	Interval time.Duration
}

// StreamRow is a stream as listed, with its staleness judged at render time.
type StreamRow struct {
	store.Stream
	Stale bool
	// Account is the other account the stream is in; "" for jetwatch's own.
	Account string
}

// Shown is the health every page and the API show for the stream: stale
// wins over the sampled health, which may no longer be true.
func (r StreamRow) Shown() store.Health { return shownHealth(r.Health, r.Stale, r.SampledAt) }

// Level is the health level to show, Shown's.
func (r StreamRow) Level() string { return r.Shown().Level }

// ConsumerRow is a consumer as listed, with its staleness and, on the
// stream page, its lag sparkline.
type ConsumerRow struct {
	store.Consumer
	Stale bool
	Spark Sparkline
	// Account is the other account the consumer is in; "" for jetwatch's
	// own.
	Account string
}

// Shown is the health to show, like StreamRow.Shown.
func (r ConsumerRow) Shown() store.Health { return shownHealth(r.Health, r.Stale, r.SampledAt) }

// Level is the health level to show, Shown's.
func (r ConsumerRow) Level() string { return r.Shown().Level }

// shownHealth is the one judgement of what health to show: the sampled
// health, or, when the sample is too old to trust, stale, saying since
// when, with the sampled reasons after.
func shownHealth(h store.Health, stale bool, sampledAt time.Time) store.Health {
	if !stale {
		return h
	}
	return store.Health{Level: store.HealthStale,
		Reasons: append([]string{"not sampled since " + UTC(sampledAt) + ": the numbers may be old"}, h.Reasons...)}
}

// Overview is the overview page's live region.
type Overview struct {
	Page   Page
	Counts store.Counts
	// Triage is what is wrong now: it leads the page.
	Triage     Triage
	Table      StreamTable
	TopLagging []ConsumerRow
	Servers    []store.Server
	Sampler    SamplerInfo
	StallAfter time.Duration
	// ShowOwn is set when jetwatch's own streams and consumers are listed
	// and counted too (?own=1).
	ShowOwn bool
	// Accounts is the viewer's account filter.
	Accounts AccountFilter
}

// StreamPage is one stream's page.
type StreamPage struct {
	Page Page
	// Stream carries its config.
	Stream StreamRow
	// Window is the history window shown, one of Windows or any duration.
	Window    string
	Windows   []string
	Messages  LineChart
	Bytes     LineChart
	Consumers []ConsumerRow
	// ConfigRaw is the stream's config as indented JSON.
	ConfigRaw string
	// Account is the other account the stream is in, shown read-only;
	// "" for jetwatch's own. OwnAccount names jetwatch's own.
	Account, OwnAccount string
}

// ConsumerPage is one consumer's page.
type ConsumerPage struct {
	Page     Page
	Consumer ConsumerRow
	Window   string
	Windows  []string
	Pending  LineChart
	Rates    LineChart
	// ConfigRaw is the consumer's config as indented JSON.
	ConfigRaw string
	// Breakers guard this consumer's handlers.
	Breakers []store.Breaker
	// Pause is what the page offers about pausing the consumer.
	Pause PauseControl
	// Account is the other account the consumer is in, shown read-only;
	// "" for jetwatch's own. OwnAccount names jetwatch's own.
	Account, OwnAccount string
}

// NotFound is the friendly 404 page.
type NotFound struct {
	Message string
}

// ErrorPage is shown for failures, without their internal details.
type ErrorPage struct {
	Status  int
	Message string
}

// StreamURL is the path of a stream's page; the name is path-escaped, so
// any name NATS allows makes a working link.
func StreamURL(stream string) string { return "/streams/" + url.PathEscape(stream) }

// ConsumerURL is the path of a consumer's page.
func ConsumerURL(stream, consumer string) string {
	return StreamURL(stream) + "/consumers/" + url.PathEscape(consumer)
}

// WindowURL is path with ?window=w.
func WindowURL(path, w string) string { return path + "?window=" + url.QueryEscape(w) }

// HealthLabel is the word shown in a badge.
func HealthLabel(level string) string {
	switch level {
	case store.HealthOK, store.HealthWarning, store.HealthCritical, store.HealthStale:
		return level
	case "":
		return "unknown"
	}
	return level
}

// HealthMeaning is what a level asks of the operator, for badge titles.
func HealthMeaning(level string) string {
	switch level {
	case store.HealthOK:
		return "ok: nothing to do"
	case store.HealthWarning:
		return "warning: look soon"
	case store.HealthCritical:
		return "critical: act now"
	case store.HealthStale:
		return "stale: not sampled recently, numbers may be old"
	}
	return level
}
