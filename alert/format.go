package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>.
const SignatureHeader = "X-Jetwatch-Signature"

// IdempotencyHeader carries the notification id, the same on every retry.
const IdempotencyHeader = "Idempotency-Key"

// Sign returns the X-Jetwatch-Signature value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks an X-Jetwatch-Signature header against body: the HMAC
// must match and t must be within tolerance of now, so a captured request
// replayed later is refused.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("no valid " + SignatureHeader + " header")
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature time is too far from now: possible replay")
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return errors.New("signature is not hex")
	}
	got, _ := strings.CutPrefix(Sign(secret, time.Unix(t, 0), body), "t="+ts+",v1=")
	gotb, _ := hex.DecodeString(got)
	if !hmac.Equal(gotb, want) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// Body renders a notification in the receiver's format.
func Body(format string, n Notification, externalURL string) ([]byte, error) {
	switch format {
	case FormatJSON:
		return json.Marshal(n)
	case FormatSlack:
		return json.Marshal(map[string]string{"text": slackText(n, externalURL)})
	case FormatAlertmanager, "":
		return json.Marshal(alertmanagerBody(n, externalURL))
	case FormatAlertmanagerAPI:
		return json.Marshal([]postableAlert{alertmanagerAPIAlert(n, externalURL)})
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// amAlert and amMessage follow the Alertmanager webhook payload (version 4).
type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

type amMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []amAlert         `json:"alerts"`
}

func alertmanagerBody(n Notification, externalURL string) amMessage {
	labels := map[string]string{"alertname": n.Rule, "kind": n.Kind, "severity": n.Severity}
	maps.Copy(labels, n.Labels)
	annotations := map[string]string{"summary": n.Summary, "value": strconv.FormatFloat(n.Value, 'f', -1, 64)}
	generator := ""
	if externalURL != "" {
		generator = strings.TrimSuffix(externalURL, "/") + "/alerts"
	}
	return amMessage{
		Version: "4", GroupKey: fmt.Sprintf("{}:{alertname=%q}", n.Rule), Status: n.Status, Receiver: n.Receiver,
		GroupLabels: map[string]string{"alertname": n.Rule}, CommonLabels: labels, CommonAnnotations: annotations,
		ExternalURL: externalURL,
		// A firing alert has no end yet: Alertmanager sends the zero time.
		Alerts: []amAlert{{Status: n.Status, Labels: labels, Annotations: annotations, StartsAt: n.StartsAt,
			EndsAt: n.EndsAt, GeneratorURL: generator, Fingerprint: n.Fingerprint}},
	}
}

// postableAlert is one alert as Alertmanager's POST /api/v2/alerts takes
// it. A firing alert has no endsAt: Alertmanager then ends it after its
// resolve_timeout unless it is sent again, which the evaluator does.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func alertmanagerAPIAlert(n Notification, externalURL string) postableAlert {
	labels := map[string]string{}
	// Alertmanager treats an empty label as absent, and a label is part of
	// the alert's identity: send only the ones with a value.
	for k, v := range n.Labels {
		if v != "" {
			labels[k] = v
		}
	}
	labels["alertname"], labels["severity"] = n.Rule, n.Severity
	annotations := map[string]string{"summary": n.Summary,
		"description": fmt.Sprintf("jetwatch rule %s (%s) is %s with value %s, since %s.", n.Rule, n.Kind, n.Status,
			strconv.FormatFloat(n.Value, 'f', -1, 64), n.StartsAt.UTC().Format(time.RFC3339))}
	for k, v := range annotations {
		if v == "" {
			delete(annotations, k)
		}
	}
	a := postableAlert{Labels: labels, Annotations: annotations, StartsAt: n.StartsAt}
	if n.Status == StatusResolved {
		a.EndsAt = n.EndsAt
	}
	if externalURL != "" {
		a.GeneratorURL = strings.TrimSuffix(externalURL, "/") + "/alerts"
	}
	return a
}

func slackText(n Notification, externalURL string) string {
	var b strings.Builder
	if n.Status == StatusResolved {
		fmt.Fprintf(&b, ":white_check_mark: *[RESOLVED] %s*", n.Rule)
	} else {
		fmt.Fprintf(&b, ":rotating_light: *[FIRING] %s* (%s)", n.Rule, n.Severity)
	}
	fmt.Fprintf(&b, "\n%s", n.Summary)
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		fmt.Fprintf(&b, "\n• %s: `%s`", k, n.Labels[k])
	}
	fmt.Fprintf(&b, "\nsince %s", n.StartsAt.Format(time.RFC3339))
	if externalURL != "" {
		fmt.Fprintf(&b, " · <%s/alerts|jetwatch>", strings.TrimSuffix(externalURL, "/"))
	}
	return b.String()
}
