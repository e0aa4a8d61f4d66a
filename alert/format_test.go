package alert_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
)

func TestWebhookFormats(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	n := alert.Notification{ID: "k1", Receiver: "ops", Rule: "billing-lag", Kind: alert.KindConsumerLag, Severity: "critical",
		Status: alert.StatusFiring, Labels: map[string]string{"stream": "ORDERS", "consumer": "billing"},
		Summary: "consumer billing on ORDERS has 20 pending messages", Value: 20, Fingerprint: "abc", StartsAt: start}

	b, err := alert.Body(alert.FormatAlertmanager, n, "https://jetwatch.example.com/")
	require.NoError(t, err)
	var am struct {
		Version, Status, Receiver string
		GroupLabels               map[string]string
		Alerts                    []struct {
			Status       string
			Labels       map[string]string
			Annotations  map[string]string
			StartsAt     time.Time
			EndsAt       time.Time
			GeneratorURL string
			Fingerprint  string
		}
	}
	require.NoError(t, json.Unmarshal(b, &am))
	require.Equal(t, "4", am.Version)
	require.Equal(t, "firing", am.Status)
	require.Equal(t, "billing-lag", am.GroupLabels["alertname"])
	require.Len(t, am.Alerts, 1)
	a := am.Alerts[0]
	require.Equal(t, map[string]string{"alertname": "billing-lag", "severity": "critical", "kind": "consumer_lag",
		"stream": "ORDERS", "consumer": "billing"}, a.Labels)
	require.Equal(t, n.Summary, a.Annotations["summary"])
	require.Equal(t, start, a.StartsAt)
	require.True(t, a.EndsAt.IsZero(), "a firing alert has no end")
	require.Contains(t, string(b), `"endsAt":"0001-01-01T00:00:00Z"`)
	require.Equal(t, "abc", a.Fingerprint)
	require.Equal(t, "https://jetwatch.example.com/alerts", a.GeneratorURL)

	n.Status, n.EndsAt = alert.StatusResolved, start.Add(time.Hour)
	b, err = alert.Body(alert.FormatAlertmanager, n, "")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &am))
	require.Equal(t, "resolved", am.Status)
	require.Equal(t, start.Add(time.Hour), am.Alerts[0].EndsAt)

	b, err = alert.Body(alert.FormatSlack, n, "")
	require.NoError(t, err)
	var slack struct{ Text string }
	require.NoError(t, json.Unmarshal(b, &slack))
	require.Contains(t, slack.Text, "[RESOLVED] billing-lag")
	require.Contains(t, slack.Text, "stream: `ORDERS`")

	b, err = alert.Body(alert.FormatJSON, n, "")
	require.NoError(t, err)
	var back alert.Notification
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, n, back)
}

func TestAlertmanagerAPIBody(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	n := alert.Notification{ID: "k1", Receiver: "am", Rule: "checkout-breaker", Kind: alert.KindBreakerOpen, Severity: "critical",
		Status: alert.StatusFiring, Labels: map[string]string{"service": "checkout", "breaker": "payments", "account": ""},
		Summary: "breaker payments of checkout is open", Value: 1, Fingerprint: "abc", StartsAt: start}
	type postable struct {
		Labels       map[string]string
		Annotations  map[string]string
		StartsAt     time.Time
		EndsAt       *time.Time
		GeneratorURL string
	}
	b, err := alert.Body(alert.FormatAlertmanagerAPI, n, "https://jetwatch.example.com/")
	require.NoError(t, err)
	var got []postable
	require.NoError(t, json.Unmarshal(b, &got))
	require.Len(t, got, 1, "one alert per request")
	a := got[0]
	require.Equal(t, map[string]string{"alertname": "checkout-breaker", "severity": "critical",
		"service": "checkout", "breaker": "payments"}, a.Labels, "no empty label values")
	require.Equal(t, n.Summary, a.Annotations["summary"])
	require.Contains(t, a.Annotations["description"], "checkout-breaker")
	require.Equal(t, start, a.StartsAt)
	require.Nil(t, a.EndsAt, "a firing alert has no end: Alertmanager keeps it while it is re-sent")
	require.NotContains(t, string(b), "endsAt")
	require.Equal(t, "https://jetwatch.example.com/alerts", a.GeneratorURL)

	n.Status, n.EndsAt = alert.StatusResolved, start.Add(time.Hour)
	b, err = alert.Body(alert.FormatAlertmanagerAPI, n, "")
	require.NoError(t, err)
	got = nil
	require.NoError(t, json.Unmarshal(b, &got))
	require.NotNil(t, got[0].EndsAt)
	require.Equal(t, start.Add(time.Hour), *got[0].EndsAt)
	require.NotContains(t, string(b), "generatorURL", "no link without --external-url")
}
