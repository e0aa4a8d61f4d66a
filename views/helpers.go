package views

import (
	"strconv"
	"strings"

	"github.com/jetwatch/jetwatch/store"
)

func itoa(n int) string { return strconv.Itoa(n) }

func navClass(current, item string) string {
	if current == item {
		return "active"
	}
	return ""
}

// serverSuffix names the server connected to: its name if known, else its URL.
func serverSuffix(name, url string) string {
	switch {
	case name != "":
		return "· " + name
	case url != "":
		return "· " + url
	}
	return ""
}

func join(items []string) string { return strings.Join(items, ", ") }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func pullPush(push bool) string {
	if push {
		return "push"
	}
	return "pull"
}

func durable(d bool) string {
	if d {
		return "durable"
	}
	return "ephemeral"
}

func backoff(steps []float64) string {
	if len(steps) == 0 {
		return "none (ack wait between deliveries)"
	}
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = Seconds(s)
	}
	return strings.Join(parts, ", ")
}

// reasons joins health reasons into one line.
func reasons(rs []string) string { return strings.Join(rs, "; ") }

func orUnlimited(s string) string {
	if s == "—" {
		return "unlimited"
	}
	return s
}

// replicaLevel is a replica's health, for styling and tests.
func replicaLevel(current, offline bool) string {
	switch {
	case offline:
		return "critical"
	case !current:
		return "warning"
	}
	return "ok"
}

// replicaSeen renders when a replica's leader last heard from it.
func replicaSeen(r store.Replica) string {
	switch {
	case r.Unseen:
		return "not since the election, " + Seconds(r.ActiveSeconds) + " ago"
	case r.ActiveSeconds <= 0:
		return "now"
	}
	return Seconds(r.ActiveSeconds) + " ago"
}

// usageTitle is a server's exact usage of a resource and its limit.
func usageTitle(used uint64, limit int64) string {
	if limit <= 0 {
		return Exact(used) + " bytes, no limit"
	}
	return Exact(used) + " of " + Exact(limit) + " bytes (" + Pct(100*float64(used)/float64(limit)) + ")"
}

// unhealthy summarises the streams that need the operator: "1 critical,
// 2 warning"; empty when none do.
func unhealthy(by map[string]int) string {
	var parts []string
	for _, level := range []string{store.HealthCritical, store.HealthWarning} {
		if n := by[level]; n > 0 {
			parts = append(parts, itoa(n)+" "+level)
		}
	}
	return strings.Join(parts, ", ")
}

// accountMessages is the messages of all an account's streams.
func accountMessages(a store.Account) uint64 {
	var n uint64
	for i := range a.Streams {
		n += a.Streams[i].Messages
	}
	return n
}
