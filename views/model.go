package views

import (
	"net/url"
	"time"

	"github.com/jetwatch/jetwatch/store"
)

// Page is what every page's layout needs.
type Page struct {
	Title          string
	Nav            string // "overview", ...
	Version        string
	CSSURL, JSURL  string
	IconURL        string
	RefreshSeconds int
	// LiveURL is fetched to refresh the page's live region; empty for none.
	LiveURL string
	NATS    NATSBanner
	Now     time.Time
}

// NATSBanner is the connection state shown on every page.
type NATSBanner struct {
	Connected  bool
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
	JSZ            string
	Interval       time.Duration
}

// StreamRow is a stream as listed, with its staleness judged at render time.
type StreamRow struct {
	store.Stream
	Stale bool
}

// Level is the health level to show, stale winning over the stored level.
func (r StreamRow) Level() string {
	if r.Stale {
		return store.HealthStale
	}
	return r.Health.Level
}

// Overview is the overview page.
type Overview struct {
	Page       Page
	Counts     store.Counts
	Streams    []StreamRow
	TopLagging []store.Consumer
	Stalled    []store.Consumer
	Servers    []store.Server
	Sampler    SamplerInfo
	StallAfter time.Duration
}

// StreamPage is one stream's page.
type StreamPage struct {
	Page      Page
	Stream    StreamRow
	Window    string
	Windows   []string
	Messages  LineChart
	Bytes     LineChart
	Consumers []ConsumerRow
}

// ConsumerRow is a consumer with its lag sparkline.
type ConsumerRow struct {
	store.Consumer
	Spark Sparkline
}

// ConsumerPage is one consumer's page.
type ConsumerPage struct {
	Page      Page
	Consumer  store.Consumer
	Stale     bool
	Window    string
	Windows   []string
	Pending   LineChart
	Rates     LineChart
	ConfigRaw string
}

// NotFound is the friendly 404 page.
type NotFound struct {
	Page    Page
	Message string
}

// ErrorPage is shown for internal errors, without their details.
type ErrorPage struct {
	Page    Page
	Status  int
	Message string
}

// StreamURL is the path of a stream's page.
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
	case store.HealthOK:
		return "ok"
	case store.HealthWarning:
		return "warning"
	case store.HealthCritical:
		return "critical"
	case store.HealthStale:
		return "stale"
	}
	return level
}
