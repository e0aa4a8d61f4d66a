// Command jetwatch-bench measures what the issues name on a NATS server
// holding many streams and consumers: the sample cycle (its median and
// maximum over rounds, and the part spent storing it), jetwatch's resident
// memory, a /metrics scrape and an overview render, and, in the same run
// and against the same server, natscli's `nats stream report` plus `nats
// consumer report` for every stream when `nats` is on PATH. It prints a
// table.
//
//	go run -tags sqlite_fts5 ./cmd/jetwatch-bench -streams 1000 -consumers 10
//
// By default the NATS server runs in this process, so its CPU and memory
// count as jetwatch's. With -server the streams are created on (or, when
// already there, reused from) a server started separately, e.g.
//
//	nats-server -js -sd /tmp/bench-nats -p 4333 &
//	go run -tags sqlite_fts5 ./cmd/jetwatch-bench -server nats://127.0.0.1:4333 -streams 10000 -consumers 10
//
// and the memory figures are jetwatch's alone. -nats-process does the same
// with a server this command runs in a child process, and -natsdir keeps
// that server's streams for the next run (creating 10,000 streams x 10
// consumers takes minutes):
//
//	go run -tags sqlite_fts5 ./cmd/jetwatch-bench -nats-process -natsdir /tmp/bench-nats -streams 10000 -consumers 10
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/gctune"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/web"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jetwatch-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	streams := flag.Int("streams", 1000, "streams to create")
	consumers := flag.Int("consumers", 10, "consumers per stream")
	messages := flag.Int("messages", 10, "messages per stream")
	rounds := flag.Int("rounds", 5, "sample cycles to time")
	scrapes := flag.Int("scrapes", 20, "metrics scrapes and overview renders to time; 0 to skip them")
	natsCLI := flag.String("nats", "nats", "natscli binary; empty to skip the comparison")
	deliver := flag.Bool("deliver", true, "have each consumer receive and acknowledge one message before the cycles, as any consumer in use has: the server then answers from memory rather than reading each consumer's state from disk")
	publish := flag.Int("publish", 1, "messages to publish to every stream between two cycles, so every stream and consumer changes in each")
	publishStreams := flag.Int("publish-streams", 100, "percent of the streams -publish publishes to between two cycles: 100 changes every stream and consumer in each cycle (the issues' measure); less is closer to a system where most streams are idle")
	natsURL := flag.String("server", "", "URL of a NATS server started separately; empty to run one in this process")
	natsProcess := flag.Bool("nats-process", false, "run the NATS server in a child process (this command again, with -serve-nats), so the memory figures are jetwatch's alone")
	serveNATS := flag.String("serve-nats", "", "run only a NATS server storing in this directory, print its URL and stop when standard input closes: what -nats-process starts")
	natsDir := flag.String("natsdir", "", "store directory of the NATS server this command runs, kept after the run so that the next run with it reuses the streams instead of creating them; empty for a temporary one")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the sample cycles to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the sample cycles to this file")
	cycleTimeout := flag.Duration("cycle-timeout", 0, "the sampler's cycle timeout; 0 for its default (8 s). A longer one shows a whole cycle's work on a machine too loaded to read everything in time")
	flag.Parse()
	if *publishStreams < 0 || *publishStreams > 100 {
		return fmt.Errorf("-publish-streams %d: give a percentage from 0 to 100", *publishStreams)
	}
	if *serveNATS != "" {
		// With Go's own collector settings, as the nats-server binary
		// runs: jetwatch's GOGC (below) is not a NATS server's, and made
		// this one collect more often than a real one.
		return serveNATSOnly(*serveNATS)
	}
	// As jetwatch does: its memory is what is measured. (A NATS server
	// run in this process shares it.)
	gctune.Apply(os.Getenv)

	dir, err := os.MkdirTemp("", "jetwatch-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	url := *natsURL
	where := "a separate NATS server (not counted in jetwatch's memory)"
	// natsCPU is the CPU time the NATS server has used, when it runs in a
	// process of its own this command can see; nil otherwise.
	var natsCPU func() time.Duration
	storeDir := cmp.Or(*natsDir, dir+"/nats")
	switch {
	case url != "":
	case *natsProcess:
		child, childURL, err := startNATSProcess(storeDir)
		if err != nil {
			return err
		}
		defer child.stop()
		url = childURL
		natsCPU = child.cpuTime
		where = "a NATS server in a child process (not counted in jetwatch's memory)"
	default:
		// Not shut down: with 100,000 consumers that takes a quarter of an
		// hour (each consumer store waits for its flusher), and the store
		// recovers from an exit as from a crash.
		ns, err := startNATS(storeDir)
		if err != nil {
			return err
		}
		url = ns.ClientURL()
		where = "an in-process NATS server (its memory counts in RSS)"
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()

	// Cancellable, as serve's is: the SQLite driver works differently
	// with a context that can end.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	created, err := populate(ctx, nc, *streams, *consumers, *messages, *deliver)
	if err != nil {
		return err
	}
	fmt.Printf("%d streams x %d consumers, %d messages each, on %s: %d streams created, in %s; GOGC %d\n\n",
		*streams, *consumers, *messages, where, created, time.Since(start).Round(time.Millisecond), gctune.Percent())

	db, err := store.Open(ctx, dir+"/index")
	if err != nil {
		return err
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sampler, err := collector.NewSampler(nc, db, collector.SamplerConfig{Registerer: reg, Logger: quiet, CycleTimeout: *cycleTimeout})
	if err != nil {
		return err
	}
	rssBefore := memStatus()["VmRSS"]
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	var cycle, save, cpu, gcCPU, serverCPU []time.Duration
	var problems []string
	var read []int
	var firstPeak int64 // VmHWM after the first cycle
	want := *streams * *consumers
	for r := range *rounds {
		if r > 0 {
			if err := publishAll(ctx, nc, *streams, *publish, *publishStreams); err != nil {
				return err
			}
		}
		var server0 time.Duration
		if natsCPU != nil {
			server0 = natsCPU()
		}
		t0, cpu0, gc0 := time.Now(), cpuTime(), gcCPUTime()
		c, err := sampler.SampleOnce(ctx)
		if err != nil {
			return err
		}
		cycle = append(cycle, time.Since(t0))
		cpu = append(cpu, cpuTime()-cpu0)
		gcCPU = append(gcCPU, gcCPUTime()-gc0)
		if natsCPU != nil {
			serverCPU = append(serverCPU, natsCPU()-server0)
		}
		st := sampler.State()
		save = append(save, st.LastSaveDuration)
		problems = st.Errors
		// A cycle cut short by its timeout would look fast: count what
		// was read.
		n := 0
		for i := range c.Consumers {
			if c.Consumers[i].Unread == nil && strings.HasPrefix(c.Consumers[i].Stream, "BENCH_") {
				n++
			}
		}
		read = append(read, n)
		if r == 0 {
			firstPeak = memStatus()["VmHWM"]
		}
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	mem := memStatus()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "measure\truns\tmin\tmedian\tmax\ttarget\t")
	row := func(name string, ds []time.Duration, target string) {
		ds = slices.Sorted(slices.Values(ds))
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, len(ds), msec(ds[0]), msec(ds[len(ds)/2]), msec(ds[len(ds)-1]), target)
	}
	row(fmt.Sprintf("sample cycle (%d streams, %d consumers)", *streams, want), cycle, "<= 5000 ms")
	// The first decodes every consumer's config and has no lag windows:
	// the others are the steady state.
	fmt.Fprintf(w, "  the first cycle; the later ones in order\t1\t-\t%s\t%s\t\t\n", msec(cycle[0]), msecs(cycle[1:]))
	row("  of which storing it (SaveCycle)", save, "")
	row("  CPU time of this process per cycle", cpu, "")
	row("    of which collecting garbage (Go's estimate)", gcCPU, "")
	if serverCPU != nil {
		row("  CPU time of the NATS server process per cycle", serverCPU, "")
	}
	slices.Sort(read)
	fmt.Fprintf(w, "  consumers read per cycle (of %d)\t%d\t%d\t%d\t%d\tall\t\n", want, len(read), read[0], read[len(read)/2], read[len(read)-1])
	fmt.Fprintf(w, "resident memory after the cycles (VmRSS; peak VmHWM)\t1\t-\t%s\t%s\t<= 400 MB\t\n", mib(mem["VmRSS"]), mib(mem["VmHWM"]))
	fmt.Fprintf(w, "  before the first cycle (VmRSS); Go heap in use after\t1\t-\t%s\t%s\t\t\n", mib(rssBefore), mib(int64(ms.HeapInuse)))
	fmt.Fprintf(w, "  peak after the first cycle (VmHWM)\t1\t-\t-\t%s\t\t\n", mib(firstPeak))

	if *scrapes > 0 {
		if err := timeWeb(w, row, db, reg, sampler, *scrapes); err != nil {
			return err
		}
	}
	if *natsCLI != "" {
		if path, err := exec.LookPath(*natsCLI); err != nil {
			fmt.Fprintf(w, "natscli\t-\t-\t-\t-\tnot on PATH: go install github.com/nats-io/natscli/nats@v0.5.0\t\n")
		} else {
			d, err := natsReports(path, url, *streams)
			if err != nil {
				return err
			}
			slices.Sort(cycle)
			fmt.Fprintf(w, "nats stream report + consumer report x %d\t1\t%s\t%s\t%s\t%.0fx the sample cycle\t\n",
				*streams, msec(d), msec(d), msec(d), float64(d)/float64(cycle[len(cycle)/2]))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		fmt.Printf("\nthe last cycle's problems (%d shown): %s\n", len(problems), strings.Join(problems[:min(3, len(problems))], "; "))
	}
	return nil
}

// startNATS starts a JetStream server on a free port storing in dir.
func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 4 << 30, JetStreamMaxStore: 64 << 30})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	// A kept store directory with 10,000 streams takes a while to recover.
	if !ns.ReadyForConnections(10 * time.Minute) {
		ns.Shutdown()
		return nil, errors.New("nats server did not start")
	}
	return ns, nil
}

// serveNATSOnly runs a server for a parent jetwatch-bench: it prints the
// URL and serves until the parent closes standard input (or exits).
func serveNATSOnly(dir string) error {
	ns, err := startNATS(dir)
	if err != nil {
		return err
	}
	fmt.Println(ns.ClientURL())
	// Exits without shutting the server down, as startNATS's caller does.
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// natsProcess is a NATS server run by this command in a child process.
type natsProcess struct {
	cmd   *exec.Cmd
	stdin io.Closer
}

func startNATSProcess(dir string) (*natsProcess, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "-serve-nats", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	p := &natsProcess{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("nats server process: %w", err)
	}
	return p, strings.TrimSpace(line), nil
}

// cpuTime is the user and system CPU time the child has used, read from
// /proc (in the kernel's USER_HZ, 100 a second); 0 where there is none.
func (p *natsProcess) cpuTime() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 14th and 15th of the line.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// stop ends the child by closing its standard input, and waits for it.
func (p *natsProcess) stop() {
	p.stdin.Close()
	p.cmd.Wait() //nolint:errcheck // it is going away either way
}

// timeWeb times /metrics scrapes and overview renders of the sampled state.
func timeWeb(w io.Writer, row func(string, []time.Duration, string), db *store.DB, reg *prometheus.Registry,
	sampler *collector.Sampler, scrapes int) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := web.New(web.Config{
		Index:          db,
		NATSState:      func() web.NATSState { return web.NATSState{Connected: true} },
		SamplerState:   func() store.SamplerState { return store.SamplerState{FirstCycleDone: true, LastCycleAt: time.Now()} },
		Gatherer:       reg,
		SampledMetrics: sampler.WriteMetrics,
		Logger:         quiet,
	})
	if err != nil {
		return err
	}
	// Over a real connection, as Prometheus and a browser read it: a
	// response recorder would time holding hundreds of megabytes of
	// /metrics in memory, which no scrape does.
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client := hs.Client()
	timeGet := func(path string, gz bool) ([]time.Duration, int64, error) {
		var ds []time.Duration
		var size int64
		for range scrapes {
			req, err := http.NewRequest(http.MethodGet, hs.URL+path, nil)
			if err != nil {
				return nil, 0, err
			}
			if gz {
				// Set by hand, the body stays compressed, as sent.
				req.Header.Set("Accept-Encoding", "gzip")
			}
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return nil, 0, fmt.Errorf("GET %s: %w", path, err)
			}
			size, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(t0))
			if err != nil {
				return nil, 0, fmt.Errorf("GET %s: %w", path, err)
			}
			if resp.StatusCode != http.StatusOK {
				return nil, 0, fmt.Errorf("GET %s: %s", path, resp.Status)
			}
		}
		return ds, size, nil
	}
	metrics, metricsSize, err := timeGet("/metrics", false)
	if err != nil {
		return err
	}
	metricsGz, metricsGzSize, err := timeGet("/metrics", true)
	if err != nil {
		return err
	}
	overview, overviewSize, err := timeGet("/", false)
	if err != nil {
		return err
	}
	row(fmt.Sprintf("/metrics scrape (%d KiB)", metricsSize/1024), metrics, "<= 1000 ms")
	row(fmt.Sprintf("/metrics scrape, gzip (%d KiB)", metricsGzSize/1024), metricsGz, "<= 1000 ms")
	row(fmt.Sprintf("overview render (%d KiB)", overviewSize/1024), overview, "<= 100 ms")
	return nil
}

// cpuTime is the user and system CPU time this process has used.
// gcCPUTime is the CPU time the Go runtime estimates it has spent
// collecting garbage (background marking, assists, pauses), all
// goroutines together.
func gcCPUTime() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memStatus reads this process's memory lines from /proc/self/status, in
// bytes: VmRSS, VmHWM (the peak), ... Empty where there is no /proc.
// msecs lists durations in milliseconds, in their order.
func msecs(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = strconv.FormatInt(d.Milliseconds(), 10)
	}
	return strings.Join(out, " ")
}

func memStatus() map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Vm") {
			continue
		}
		if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			out[k] = kb << 10
		}
	}
	return out
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	// The in-use figures are then what the sampler keeps between cycles,
	// not whatever the last collection happened to find mid-cycle.
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func mib(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func msec(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// populate creates the streams and consumers with bounded concurrency,
// leaving alone those a server started separately already has, and says
// how many streams it created.
func populate(ctx context.Context, nc *nats.Conn, streams, consumers, messages int, deliver bool) (int, error) {
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		return 0, err
	}
	jobs := make(chan int)
	errs := make(chan error, 16)
	var created atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				name := fmt.Sprintf("BENCH_%04d", i)
				s, err := js.Stream(ctx, name)
				switch {
				case errors.Is(err, jetstream.ErrStreamNotFound):
					s, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{fmt.Sprintf("bench.%d.>", i)}, MaxMsgs: 100_000})
					if err != nil {
						errs <- fmt.Errorf("stream %s: %w", name, err)
						return
					}
					created.Add(1)
				case err != nil:
					errs <- fmt.Errorf("stream %s: %w", name, err)
					return
				}
				for m := s.CachedInfo().State.Msgs; m < uint64(messages); m++ {
					if _, err := js.Publish(ctx, fmt.Sprintf("bench.%d.m", i), fmt.Appendf(nil, "message %d", m)); err != nil {
						errs <- err
						return
					}
				}
				// A loaded server may time out a request: try again.
				err = populateConsumers(ctx, s, consumers, deliver)
				for try := 1; err != nil && try < 5; try++ {
					err = populateConsumers(ctx, s, consumers, deliver)
				}
				if err != nil {
					errs <- fmt.Errorf("consumers of %s: %w", name, err)
					return
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range streams {
			select {
			case jobs <- i:
			case err := <-errs:
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
		return int(created.Load()), nil
	}
}

// publishAll publishes n messages to every stream, waiting for each to be
// stored.
func publishAll(ctx context.Context, nc *nats.Conn, streams, n, percent int) error {
	if n == 0 || percent == 0 {
		return nil
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		return err
	}
	// In batches: more than PublishAsyncMaxPending (4,000) in flight
	// stall and fail.
	const batch = 1000
	for i := range streams {
		// percent of every hundred streams, spread over all of them.
		for range n {
			if i%100 >= percent {
				break
			}
			if _, err := js.PublishAsync(fmt.Sprintf("bench.%d.m", i), []byte("more")); err != nil {
				return err
			}
		}
		if (i+1)%batch != 0 && i != streams-1 {
			continue
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return errors.New("publishing between cycles: no acknowledgement within a minute")
		}
	}
	return nil
}

// populateConsumers creates the consumers a stream lacks and, with
// deliver, has each that never delivered receive and acknowledge one
// message.
func populateConsumers(ctx context.Context, s jetstream.Stream, consumers int, deliver bool) error {
	have := map[string]*jetstream.ConsumerInfo{}
	l := s.ListConsumers(ctx)
	for info := range l.Info() {
		have[info.Name] = info
	}
	if err := l.Err(); err != nil {
		return err
	}
	for c := range consumers {
		name := fmt.Sprintf("c%02d", c)
		info, ok := have[name]
		if !ok {
			cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				return err
			}
			info = cons.CachedInfo()
		}
		if !deliver || info.Delivered.Consumer > 0 {
			continue
		}
		cons, err := s.Consumer(ctx, name)
		if err != nil {
			return err
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
	}
	return nil
}

// natsReports times what an operator runs by hand for the same picture:
// one stream report and one consumer report per stream.
func natsReports(bin, url string, streams int) (time.Duration, error) {
	t0 := time.Now()
	cmd := exec.Command(bin, "--server", url, "stream", "report")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("nats stream report: %v: %s", err, out)
	}
	for i := range streams {
		cmd := exec.Command(bin, "--server", url, "consumer", "report", fmt.Sprintf("BENCH_%04d", i))
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("nats consumer report: %v: %s", err, out)
		}
	}
	return time.Since(t0), nil
}
