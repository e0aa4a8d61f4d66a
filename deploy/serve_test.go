package deploy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// checkUserAdd runs `jetwatch user add` as README tells to, the password
// piped on stdin, and returns the users file it wrote in dir.
func checkUserAdd(t *testing.T, bin, dir string) string {
	t.Helper()
	users := filepath.Join(dir, "users")
	cmd := exec.Command(bin, "user", "add", "--users", users, "--role", "admin", "alice")
	cmd.Env = []string{}
	cmd.Stdin = strings.NewReader("correct horse battery staple\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(users)
	require.NoError(t, err)
	require.Regexp(t, `(?m)^alice:admin:\$2[aby]\$`, string(b), "name:role:bcrypt-hash")
	require.NotContains(t, string(b), "horse", "never the password")
	u, err := auth.OpenUsers(users)
	require.NoError(t, err)
	usr, err := u.Authenticate("alice", "correct horse battery staple")
	require.NoError(t, err)
	require.Equal(t, auth.Admin, usr.Role)
	return users
}

// checkServeAsDeployed starts `jetwatch serve` with the Deployment's
// environment against an in-process NATS server: it must start on the
// non-loopback address (sign-in is configured), its probes and /metrics
// must answer without signing in, pages must ask to sign in, and SIGTERM
// must stop it cleanly.
func checkServeAsDeployed(t *testing.T, bin, users string) {
	t.Helper()
	m := loadManifest(t)
	_, c := jetwatchContainer(t, m)
	ns := natstest.RunServer(t)
	dir := t.TempDir()

	// The image's environment under the manifest's, with the cluster's
	// paths and addresses replaced by this machine's.
	vars := imageEnv(t, parseDockerfile(t)[1])
	for _, e := range c.Env {
		vars[e.Name] = e.Value
		if e.ValueFrom != nil {
			vars[e.Name] = "test value of " + e.Name
		}
	}
	env := []string{}
	for name, v := range vars {
		switch name {
		case "JETWATCH_LISTEN":
			host, _, _ := strings.Cut(v, ":")
			v = host + ":0" // a free port: tests run in parallel
		case "JETWATCH_DATA":
			v = filepath.Join(dir, "data")
		case "NATS_URL":
			v = ns.ClientURL()
		case "NATS_CREDS":
			continue // the test server has no accounts
		case "JETWATCH_USERS":
			v = users
		case "JETWATCH_SESSION_KEY":
			v = strings.Repeat("k", auth.MinSessionKeyLength)
		case "JETWATCH_RULES":
			rules := m.get(t, "ConfigMap", "jetwatch-rules").Data[filepath.Base(v)]
			v = filepath.Join(dir, filepath.Base(v))
			require.NoError(t, os.WriteFile(v, []byte(rules), 0o600))
		}
		env = append(env, name+"="+v)
	}

	// What the container runs: the image's entrypoint, then the pod's args.
	entry := execForm(t, parseDockerfile(t)[1].last(t, "ENTRYPOINT"))
	cmd := exec.Command(bin, append(entry[1:], c.Args...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	var (
		mu     sync.Mutex
		output strings.Builder
	)
	logged := func() string { mu.Lock(); defer mu.Unlock(); return output.String() }
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		dashboard := regexp.MustCompile(`^\s*dashboard: http://(\S+)/$`)
		for sc.Scan() {
			mu.Lock()
			output.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := dashboard.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		done <- cmd.Wait()
	}()
	exited := false // set where done is received
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill() //nolint:errcheck // the test has failed already
			<-done
		}
	})

	var base string
	select {
	case a := <-addr:
		host, port, err := net.SplitHostPort(a)
		require.NoError(t, err)
		ip := net.ParseIP(host)
		require.True(t, ip != nil && ip.IsUnspecified(), "listening on every interface as in the pod, got %s", a)
		base = "http://127.0.0.1:" + port
	case err := <-done:
		exited = true
		require.Failf(t, "serve stopped", "jetwatch serve with the manifest's settings exited (%v):\n%s", err, logged())
	case <-time.After(60 * time.Second):
		require.Failf(t, "serve did not start", "no dashboard address within a minute:\n%s", logged())
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// get answers the status, and the Location or else the body.
	get := func(path string) (int, string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if loc := resp.Header.Get("Location"); loc != "" {
			return resp.StatusCode, loc, err
		}
		return resp.StatusCode, string(b), err
	}
	status, _, err := get("/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "/healthz, the liveness probe, answers without signing in")
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		status, _, err := get("/readyz")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("/readyz answers %d", status)
		}
		return err
	})
	status, metrics, err := get("/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "Prometheus scrapes without signing in")
	checkScrape(t, metrics)
	status, location, err := get("/")
	require.NoError(t, err)
	require.Contains(t, []int{http.StatusFound, http.StatusSeeOther}, status, "pages ask to sign in")
	require.Contains(t, location, "/login")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM)) // what Kubernetes sends
	select {
	case err := <-done:
		exited = true
		require.NoError(t, err, "SIGTERM stops jetwatch cleanly:\n%s", logged())
	case <-time.After(30 * time.Second):
		require.Fail(t, "jetwatch did not stop within 30 s of SIGTERM, Kubernetes' grace period")
	}
}

var scrapedType = regexp.MustCompile(`(?m)^# TYPE ((?:jetwatch|jetstream)_[a-z0-9_]+) `)

// checkScrape checks a /metrics answer of a fresh jetwatch: every jetwatch
// metric in it is documented in README, and the dashboard's unlabelled
// series are there from the start (labelled ones appear with their first
// stream, dead letter or breaker).
func checkScrape(t *testing.T, metrics string) {
	t.Helper()
	known := readmeMetrics(t)
	for _, m := range scrapedType.FindAllStringSubmatch(metrics, -1) {
		require.True(t, known[m[1]], "/metrics serves %s; list it in README's Metrics and probes", m[1])
	}
	for _, series := range []string{
		"jetwatch_nats_connected 1",
		"jetwatch_dead_letters_pending ",
		"jetwatch_dead_letter_index_lag ",
		"jetwatch_bridge_fetch_failures_total ",
		"jetwatch_bridge_publish_errors_total ",
		"jetwatch_last_sample_timestamp_seconds ",
		"jetwatch_sample_duration_seconds_bucket{",
	} {
		require.Contains(t, metrics, "\n"+series, "the dashboard reads %s", strings.TrimSpace(series))
	}
}
