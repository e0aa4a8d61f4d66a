package views

import (
	"strconv"
	"strings"
)

func itoa(n int) string { return strconv.Itoa(n) }

func navClass(current, item string) string {
	if current == item {
		return "active"
	}
	return ""
}

func serverSuffix(name string) string {
	if name == "" {
		return ""
	}
	return " · " + name
}

func joinReasons(rs []string) string { return strings.Join(rs, "; ") }

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

func consumerLevel(level string, stale bool) string {
	if stale {
		return "stale"
	}
	return level
}
