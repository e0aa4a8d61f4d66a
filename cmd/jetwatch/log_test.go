package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// keyCheck is a slog handler that notes every record whose keys repeat,
// those added with Logger.With included: a log line with the same key
// twice is read as whichever value the reader's parser keeps.
type keyCheck struct {
	attrs []string // keys added with With, group prefixed
	group string
	dups  *dupLog
}

type dupLog struct {
	mu    sync.Mutex
	lines []string
}

func newKeyCheck() *keyCheck { return &keyCheck{dups: &dupLog{}} }

func (h *keyCheck) Enabled(context.Context, slog.Level) bool { return true }

func (h *keyCheck) Handle(_ context.Context, r slog.Record) error {
	seen := map[string]bool{}
	var dups []string
	note := func(k string) {
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
	}
	for _, k := range h.attrs {
		note(k)
	}
	r.Attrs(func(a slog.Attr) bool {
		note(h.group + a.Key)
		return true
	})
	if len(dups) > 0 {
		h.dups.mu.Lock()
		h.dups.lines = append(h.dups.lines, fmt.Sprintf("%q repeats %v", r.Message, dups))
		h.dups.mu.Unlock()
	}
	return nil
}

func (h *keyCheck) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]string(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = append(c.attrs, h.group+a.Key)
	}
	return &c
}

func (h *keyCheck) WithGroup(name string) slog.Handler {
	c := *h
	c.group = h.group + name + "."
	return &c
}

func (h *keyCheck) duplicates() []string {
	h.dups.mu.Lock()
	defer h.dups.mu.Unlock()
	return append([]string(nil), h.dups.lines...)
}

func TestKeyCheckFindsRepeatedKeys(t *testing.T) {
	t.Parallel()
	h := newKeyCheck()
	log := slog.New(h).With("component", "alerts", "rules", "/etc/rules.yaml")
	log.Info("alert rules loaded", "rules", 5)
	log.WithGroup("g").Info("grouped", "rules", 1)
	require.Equal(t, []string{`"alert rules loaded" repeats [rules]`}, h.duplicates())
}

// TestRulesFileLogLinesHaveEachKeyOnce loads and reloads a rules file: the
// file and the number of rules are two keys, not "rules" twice.
func TestRulesFileLogLinesHaveEachKeyOnce(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "rules.yaml")
	good := "receivers: [{name: ops, url: 'http://127.0.0.1:9/hook'}]\nrules:\n  - {name: a, kind: stream_limit, above: 90, receivers: [ops]}\n"
	require.NoError(t, os.WriteFile(file, []byte(good), 0o600))
	h := newKeyCheck()
	rf, err := loadRules(file, func(string) string { return "" }, slog.New(h))
	require.NoError(t, err)
	rf.reload("test")
	require.NoError(t, os.WriteFile(file, []byte("rules: [{name: a, kind: nope}]\n"), 0o600))
	rf.reload("test")
	require.Empty(t, h.duplicates())
}

// TestDemoLogsNoRequestsAtInfoAndNoKeyTwice runs the demo at the default
// log level, in JSON, browses it, and reads what it logged: no line about
// a request that was answered, and no line with a key twice.
func TestDemoLogsNoRequestsAtInfoAndNoKeyTwice(t *testing.T) {
	base, _, out := startDemoWithEnv(t, func(string) string { return "" }, "--log-level", "info", "--log-format", "json")
	for _, p := range []string{"/", "/?fragment=live", "/breakers", "/alerts", "/events", "/dead-letters", "/streams/ORDERS",
		"/api/v1/breakers", "/metrics", "/nothing/here"} {
		resp, err := http.Get(base + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 500, p)
	}
	// The demo's alerts fire within seconds and post to the demo's own
	// receiver: those requests are answered too.
	natstest.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		if !strings.Contains(out.String(), `"msg":"alert firing"`) {
			return errors.New("no alert has fired yet")
		}
		return nil
	})
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "{") {
			continue // the banner
		}
		n++
		require.Empty(t, repeatedJSONKey(l), "a key twice in %s", l)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if _, ok := m["status"]; ok && m["component"] == "web" {
			// Only a slow one (this machine may be busy) has a line.
			require.Equal(t, "slow http request", m["msg"], "a request logged at %v: %s", m["level"], l)
			require.Equal(t, "WARN", m["level"], l)
		}
	}
	require.NoError(t, sc.Err())
	require.Greater(t, n, 3, "the demo logged its start and its alerts")
}

// repeatedJSONKey returns a key an object in a JSON line has twice, or "".
func repeatedJSONKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	var walk func() string
	walk = func() string {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				key, _ := k.(string)
				if seen[key] {
					return key
				}
				seen[key] = true
				if d := walk(); d != "" {
					return d
				}
			}
			dec.Token() //nolint:errcheck // the closing brace
		case json.Delim('['):
			for dec.More() {
				if d := walk(); d != "" {
					return d
				}
			}
			dec.Token() //nolint:errcheck // the closing bracket
		}
		return ""
	}
	return walk()
}

func TestRepeatedJSONKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "rules", repeatedJSONKey(`{"msg":"x","rules":"/etc/r.yaml","rules":5}`))
	require.Equal(t, "a", repeatedJSONKey(`{"g":{"a":1,"a":2}}`))
	require.Empty(t, repeatedJSONKey(`{"msg":"rules rules","a":[{"b":1},{"b":2}],"c":{"b":3}}`))
}
