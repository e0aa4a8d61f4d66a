package views

import (
	"strconv"
	"strings"

	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/store"
)

// BulkJobList is the bulk jobs page.
type BulkJobList struct {
	Jobs []bulk.Job
	// More counts the older jobs left off the page.
	More int
	// Account is the --account whose jobs these are; "" for jetwatch's own.
	Account string
}

// MaxBannerJobs is how many unfinished bulk jobs the dead-letters page
// names; the rest are counted, with a link to the jobs page.
const MaxBannerJobs = 5

// BulkJobURL is the path of a bulk job's page.
func BulkJobURL(id string) string { return "/redeliveries/" + id }

// JobURL is the path of j's page, under its account.
func JobURL(j bulk.Job) string { return AccountURL(BulkJobURL(j.ID), j.Account) }

// JobProgress is the share of a job done, 0-100.
func JobProgress(j bulk.Job) float64 {
	if j.Total == 0 {
		return 100
	}
	return min(100, float64(j.Sent+j.Failed)*100/float64(j.Total))
}

// JobUnfinished says a job may still act: running or paused.
func JobUnfinished(j bulk.Job) bool { return j.State == bulk.JobRunning || j.State == bulk.JobPaused }

// maxIDsNamed is how many ticked dead letters a filter's text names.
const maxIDsNamed = 10

// FilterText is a bulk job's filter in words, without the status (a job
// acts on pending dead letters only) and the upper bound (said apart):
// "stream ORDERS, reason terminated, search “card”"; "every one" when the
// filter selects every pending dead letter.
func FilterText(f store.DeadLetterFilter) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	if n := len(f.IDs); n > 0 {
		named := make([]string, 0, min(n, maxIDsNamed))
		for _, id := range f.IDs[:min(n, maxIDsNamed)] {
			named = append(named, "#"+u64(id))
		}
		s := "the ticked " + strings.Join(named, ", ")
		if n > maxIDsNamed {
			s += " and " + strconv.Itoa(n-maxIDsNamed) + " more"
		}
		parts = append(parts, s)
	}
	add("stream", f.Stream)
	add("consumer", f.Consumer)
	add("subject", f.Subject)
	add("reason", f.Reason)
	if f.Q != "" {
		parts = append(parts, "search “"+Shorten(f.Q, 80)+"”")
	}
	if !f.Since.IsZero() {
		add("failed since", UTC(f.Since))
	}
	if !f.Until.IsZero() {
		add("failed until", UTC(f.Until))
	}
	if len(parts) == 0 {
		return "every one"
	}
	return strings.Join(parts, ", ")
}

// PlanText says what a dry run found and what the job will act on.
func PlanText(p bulk.Plan) string {
	if p.Matched == 0 {
		return "No pending dead letter matches (" + FilterText(p.Filter) + "): there is nothing to do."
	}
	verb := " match ("
	if p.Matched == 1 {
		verb = " matches ("
	}
	return pendingDeadLetters(p.Matched) + verb + FilterText(p.Filter) + "), up to #" + u64(p.UpToID) +
		". The job acts on these only: new ones that arrive later are not included."
}

// ShowingText says how much of the matching set the sample shows.
func ShowingText(p bulk.Plan) string {
	switch {
	case p.Matched == 1:
		return "Showing it."
	case len(p.Sample) >= p.Matched:
		return "Showing all " + strconv.Itoa(p.Matched) + "."
	}
	return "Showing the newest " + strconv.Itoa(len(p.Sample)) + " of " + strconv.Itoa(p.Matched) + "."
}

// JobScopeText says what a job acts on.
func JobScopeText(j bulk.Job) string {
	return "Pending dead letters matching " + FilterText(j.Filter) + ", up to #" + u64(j.MaxID) +
		": " + strconv.Itoa(j.Total) + " when it started; later ones are not included."
}

// JobCountsText is a job's progress in words: "5 of 14 done, 0 failed".
func JobCountsText(j bulk.Job) string {
	return strconv.Itoa(j.Sent) + " of " + strconv.Itoa(j.Total) + " done, " + strconv.Itoa(j.Failed) + " failed"
}

// JobBannerText is an unfinished job on the dead-letters page: "bulk
// redeliver 0123abcd running: 5/14".
func JobBannerText(j bulk.Job) string {
	text := "Bulk " + j.Action + " " + j.ID + " " + j.State + ": " + strconv.Itoa(j.Sent+j.Failed) + "/" + strconv.Itoa(j.Total)
	if j.Waiting != "" && j.State == bulk.JobRunning {
		text += ", " + j.Waiting
	}
	return text
}

func pendingDeadLetters(n int) string {
	if n == 1 {
		return "1 pending dead letter"
	}
	return strconv.Itoa(n) + " pending dead letters"
}
