package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/collector"
)

func TestEverySettingIsInTheREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, s := range settings(&config{}) {
		row := "| `--" + s.flag + "` | `" + s.env + "` |"
		require.Contains(t, string(readme), row, "README's configuration table lacks --%s", s.flag)
	}
}

func TestFlagsTakeDefaultsFromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"JETWATCH_LISTEN": "0.0.0.0:9999", "JETWATCH_SAMPLE_INTERVAL": "3s", "NATS_URL": "nats://a:4222"}
	cfg, err := parseFlags("serve", []string{"--sample-interval", "7s"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9999", cfg.Listen)
	require.Equal(t, 7*time.Second, cfg.SampleInterval, "a flag wins over the environment")
	require.Equal(t, "nats://a:4222", cfg.NATS.Servers)
	require.Equal(t, "./jetwatch-data", cfg.Data)
	require.Equal(t, 5*time.Minute, cfg.StallAfter)

	demo, err := parseFlags("demo", nil, func(string) string { return "" }, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, demo.StallAfter)
	require.Equal(t, 4222, demo.NATSPort)
}

func TestBadSettingsAreClearErrors(t *testing.T) {
	t.Parallel()
	_, err := parseFlags("serve", nil, func(k string) string {
		if k == "JETWATCH_SAMPLE_INTERVAL" {
			return "often"
		}
		return ""
	}, &bytes.Buffer{})
	require.ErrorContains(t, err, "JETWATCH_SAMPLE_INTERVAL")
	require.ErrorContains(t, err, "not a duration")

	err = run(t.Context(), []string{"serve", "--log-format", "xml"}, func(string) string { return "" }, &bytes.Buffer{})
	require.ErrorContains(t, err, "use text or json")

	err = run(t.Context(), []string{"serve", "--capture-streams", "ORDERS, PAY.*"}, func(string) string { return "" }, &bytes.Buffer{})
	require.ErrorIs(t, err, collector.ErrBadStreamPattern)
	require.ErrorContains(t, err, `--capture-streams: bad stream pattern "PAY.*": give stream names, with * for any run of characters (like ORDERS,PAY*)`)
	cfg, err := parseFlags("serve", nil, func(k string) string {
		if k == "JETWATCH_CAPTURE_STREAMS" {
			return " ORDERS , PAY* ,"
		}
		return ""
	}, &bytes.Buffer{})
	require.NoError(t, err)
	capture, err := cfg.captureStreams()
	require.NoError(t, err)
	require.Equal(t, "ORDERS,PAY*", capture.String())

	var out bytes.Buffer
	err = run(t.Context(), []string{"bogus"}, func(string) string { return "" }, &out)
	require.ErrorContains(t, err, `unknown command "bogus"`)
	require.True(t, strings.Contains(out.String(), "jetwatch demo"))
}

func TestServeRefusesNonLoopbackWithoutAuth(t *testing.T) {
	t.Parallel()
	for listen, ok := range map[string]bool{"127.0.0.1:8080": true, "localhost:0": true, "[::1]:8080": true, "0.0.0.0:8080": false, ":8080": false, "10.0.0.5:80": false} {
		err := checkListen(&config{Listen: listen}, false)
		if ok {
			require.NoError(t, err, listen)
		} else {
			require.ErrorContains(t, err, "--insecure-no-auth", listen)
			require.ErrorContains(t, err, "jetwatch user add", listen)
			require.NoError(t, checkListen(&config{Listen: listen, InsecureNoAuth: true}, false), listen)
			require.NoError(t, checkListen(&config{Listen: listen}, true), listen)
		}
	}
}
