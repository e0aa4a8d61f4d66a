package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// alertmanagerBinary is where Debian's prometheus-alertmanager puts it.
const alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// alertmanager is a real Alertmanager process.
type alertmanager struct{ base string }

// startAlertmanager runs Alertmanager on a free port with one receiver that
// sends nowhere and no cluster gossip, and stops it when the test ends.
func startAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	if _, err := os.Stat(alertmanagerBinary); err != nil {
		t.Skipf("no Alertmanager at %s (apt-get install prometheus-alertmanager; .ci/run does): %v", alertmanagerBinary, err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(config, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(alertmanagerBinary, "--config.file="+config, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it may have exited already
		<-exited
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	am := &alertmanager{base: "http://" + addr}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("alertmanager exited: %v", err)
		default:
		}
		resp, err := http.Get(am.base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("alertmanager not ready: " + resp.Status)
		}
		return nil
	})
	return am
}

// amAlert is an alert as GET /api/v2/alerts shows it.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

// active lists the alerts Alertmanager holds as active (resolved ones are
// left out).
func (am *alertmanager) active(t *testing.T) []amAlert {
	t.Helper()
	resp, err := http.Get(am.base + "/api/v2/alerts?active=true")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var alerts []amAlert
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&alerts))
	return alerts
}

func TestAlertmanagerAPIFiresAndResolvesInARealAlertmanager(t *testing.T) {
	t.Parallel()
	am := startAlertmanager(t)
	b := setup(t, strings.Replace(lagRule, "for: 5s", "for: 0s", 1))
	b.toAlertmanagerAPI(am.base + "/")
	cons := b.orders(t, 20)
	e := b.evaluator(t, b.db, b.clock.Now)
	s, err := alert.NewSender(b.js, alert.SenderConfig{Rules: func() *alert.Rules { return b.rules },
		Log: alert.NewDeliveryLog(b.db), Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		ExternalURL: "https://jetwatch.example.com", Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)

	b.evaluate(t, e)
	require.Equal(t, alert.StateFiring, state(t, e, "billing-lag"))
	var got amAlert
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		alerts := am.active(t)
		if len(alerts) != 1 {
			return fmt.Errorf("alertmanager holds %d active alerts, want 1", len(alerts))
		}
		got = alerts[0]
		return nil
	})
	require.Equal(t, map[string]string{"alertname": "billing-lag", "severity": "warning", "stream": "ORDERS", "consumer": "billing"}, got.Labels)
	require.Equal(t, "consumer billing on ORDERS has 20 pending messages (above 10)", got.Annotations["summary"])
	require.NotEmpty(t, got.Annotations["description"])
	require.Equal(t, "https://jetwatch.example.com/alerts", got.GeneratorURL)
	require.Equal(t, "active", got.Status.State)
	require.WithinDuration(t, b.clock.Now(), got.StartsAt, time.Second)
	require.Equal(t, alert.ResultDelivered, b.deliveredAs(t, alert.ResultDelivered, 1).Result)

	drain(t, cons)
	b.clock.CatchUp() // its end must not lie in Alertmanager's future
	b.evaluate(t, e)
	require.Equal(t, alert.StateInactive, state(t, e, "billing-lag"))
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if alerts := am.active(t); len(alerts) != 0 {
			return fmt.Errorf("alertmanager still holds %d active alerts: %+v", len(alerts), alerts)
		}
		return nil
	})
}
