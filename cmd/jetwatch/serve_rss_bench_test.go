package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// BenchmarkServeRSS1M runs the real jetwatch binary (built here) against
// an in-process NATS server whose DLQ stream holds 1,000,000 dead letters
// of 256 B, lets it index them, requests the dead-letter pages and API
// (single filters, full-text search, detail), and reads the process's
// resident memory from /proc. Then it restarts jetwatch on the same data
// directory and does it again. It prints a table; the targets are
// list <= 50 ms, search <= 150 ms, detail <= 10 ms, RSS <= 150 MB.
//
//	go test -tags sqlite_fts5 -run xxx -bench ServeRSS1M -benchtime 1x -timeout 30m ./cmd/jetwatch
//
// JETWATCH_BENCH_DEAD_LETTERS sets another count, for a quick look.
func BenchmarkServeRSS1M(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("JETWATCH_BENCH_DEAD_LETTERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	bin := filepath.Join(b.TempDir(), "jetwatch")
	if out, err := exec.Command("go", "build", "-tags", "sqlite_fts5", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build jetwatch: %v\n%s", err, out)
	}
	srv := natstest.RunServer(b)
	nc := natstest.Connect(b, srv)
	publishDeadLetters(b, nc, n)
	data := b.TempDir()

	for b.Loop() {
		var rows [][2]string
		for _, phase := range []string{"first start, indexes everything", "restart on the indexed data"} {
			p := startServe(b, bin, data, srv.ClientURL())
			rows = append(rows, [2]string{phase + ": ready", rssString(b, p.pid)})
			start := time.Now()
			p.waitIndexed(b, uint64(n))
			rows = append(rows, [2]string{fmt.Sprintf("%s: %d indexed (%s)", phase, n, time.Since(start).Round(time.Second)), rssString(b, p.pid)})
			for _, r := range p.exercise(b, uint64(n)) {
				rows = append(rows, [2]string{"  " + r[0], r[1]})
			}
			rows = append(rows, [2]string{phase + ": after the requests", rssString(b, p.pid)})
			b.ReportMetric(rssMiB(b, p.pid), "MiB-rss-"+strings.Fields(phase)[0])
			p.stop(b)
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "\n%-72s %s\n", "jetwatch serve, "+strconv.Itoa(n)+" dead letters", "RSS / median of 5")
		for _, r := range rows {
			fmt.Fprintf(&sb, "%-72s %s\n", r[0], r[1])
		}
		// Printed, not logged: a benchmark's log is cut after a few lines.
		fmt.Print(sb.String())
	}
}

// publishDeadLetters fills the DLQ stream with n dead letters spread over
// streams, consumers, subjects, reasons and error texts.
func publishDeadLetters(b *testing.B, nc *nats.Conn, n int) {
	b.Helper()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}}); err != nil {
		b.Fatal(err)
	}
	streams := []string{"ORDERS", "PAYMENTS", "AUDIT", "TELEMETRY", "SHIPPING", "BILLING", "USERS", "SEARCH"}
	consumers := []string{"billing", "shipping", "archiver", "decoder", "indexer"}
	reasons := []string{dlq.ReasonMaxDeliver, dlq.ReasonMaxDeliver, dlq.ReasonTerminated, dlq.ReasonError}
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	for i := range n {
		stream, consumer := streams[i%len(streams)], consumers[i%len(consumers)]
		m := nats.NewMsg(dlq.Subject(stream, consumer))
		payload := fmt.Sprintf(`{"id":"%d","customer":"%s","items":["%s","%s"],"note":"%s %s %s"}`,
			i+1, words[i%7], words[i%10], words[(i/10)%10], words[(i/100)%10], words[(i/3)%10], words[(i/7)%10])
		m.Data = []byte(payload + strings.Repeat(" ", max(0, 256-len(payload))))
		errText := fmt.Sprintf("timeout after %d ms calling %s", i%997, words[i%len(words)])
		if i%1000 == 0 {
			errText = fmt.Sprintf("schema mismatch: unknown field zulu%d", i)
		}
		dlq.Envelope{Stream: stream, Subject: fmt.Sprintf("%s.%s.%s", strings.ToLower(stream), []string{"eu", "us", "ap"}[i%3],
			[]string{"created", "paid", "shipped", "cancelled"}[i%4]), Sequence: uint64(i + 1), Consumer: consumer,
			Deliveries: 5, Reason: reasons[i%len(reasons)], Error: errText, FailedAt: time.Now()}.Apply(m.Header)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publishing dead letters did not finish")
	}
}

// serveProcess is a running jetwatch serve.
type serveProcess struct {
	cmd  *exec.Cmd
	pid  int
	base string
	out  *syncBuffer
}

func startServe(b *testing.B, bin, data, natsURL string) *serveProcess {
	b.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--server", natsURL, "--log-level", "warn")
	cmd.Env = []string{"HOME=" + b.TempDir()}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, pid: cmd.Process.Pid, out: out}
	b.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // stopped already when all went well
		cmd.Wait()         //nolint:errcheck // killed
	})
	natstest.CheckFor(b, 60*time.Second, 20*time.Millisecond, func() error {
		m := dashboardLine.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("no dashboard URL printed yet:\n%s", out.String())
		}
		p.base = m[1]
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
	return p
}

func (p *serveProcess) stop(b *testing.B) {
	b.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		b.Fatalf("jetwatch serve: %v\n%s", err, p.out.String())
	}
}

// waitIndexed polls the API until the newest dead letter is number n.
func (p *serveProcess) waitIndexed(b *testing.B, n uint64) {
	b.Helper()
	natstest.CheckFor(b, 20*time.Minute, 250*time.Millisecond, func() error {
		var page store.DeadLetterPage
		if err := p.getJSON(p.base+"/api/v1/dead-letters?limit=1", &page); err != nil {
			return err
		}
		if len(page.Items) == 0 || page.Items[0].ID < n {
			return fmt.Errorf("not all %d dead letters indexed yet", n)
		}
		return nil
	})
}

func (p *serveProcess) getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// exercise requests the pages and API with each single filter, searches
// and details, five times each, and returns the median times.
func (p *serveProcess) exercise(b *testing.B, n uint64) [][2]string {
	b.Helper()
	filters := []struct{ name, query string }{
		{"none", ""},
		{"stream", "stream=PAYMENTS"},
		{"consumer", "consumer=archiver"},
		{"subject wildcard", "subject=" + url.QueryEscape("orders.*.created")},
		{"subject wildcard, leading", "subject=" + url.QueryEscape("*.eu.paid")},
		{"reason (rare)", "reason=error"},
		{"status", "status=pending"},
		{"search, common word", "q=foxtrot"},
		{"search, rare word", "q=zulu500000"},
		{"search and stream", "q=hotel&stream=AUDIT"},
	}
	var rows [][2]string
	timed := func(name, u string) {
		var took []time.Duration
		for range 5 {
			start := time.Now()
			resp, err := http.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %s", u, resp.Status)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		rows = append(rows, [2]string{name, took[len(took)/2].Round(10 * time.Microsecond).String()})
	}
	for _, f := range filters {
		timed("page "+f.name, p.base+"/dead-letters?"+f.query)
		timed("API "+f.name, p.base+"/api/v1/dead-letters?limit=50&"+f.query)
	}
	for _, id := range []uint64{1, n / 2, n} {
		timed(fmt.Sprintf("detail page #%d", id), fmt.Sprintf("%s/dead-letters/%d", p.base, id))
		timed(fmt.Sprintf("API detail #%d", id), fmt.Sprintf("%s/api/v1/dead-letters/%d", p.base, id))
	}
	return rows
}

func rssMiB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skip("no /proc: resident memory is read from /proc/<pid>/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func rssString(b *testing.B, pid int) string {
	return fmt.Sprintf("%.0f MiB", rssMiB(b, pid))
}
