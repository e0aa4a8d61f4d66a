// Package startstop starts jetwatch's long-running parts in order and
// stops them in reverse, in the manner of river's rivershared/startstop.
// A part whose start fails (NATS down, a stream missing, a permission
// refused) is tried again with backoff, and says so in the log once per
// failure, not once per try; meanwhile the part reports "unavailable"
// itself to whoever calls it. Nothing here knows what the parts are.
package startstop

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Service is a part that can be started and stopped. Start returns once
// the part runs (its goroutines tied to its own lifetime, ended by Stop),
// or with why it cannot run yet. Stop is called only after a successful
// Start, once.
type Service interface {
	Start(ctx context.Context) error
	Stop()
}

// Func makes a Service of a start function and a stop function (nil:
// nothing to stop).
func Func(start func(ctx context.Context) error, stop func()) Service {
	return funcService{start, stop}
}

type funcService struct {
	start func(ctx context.Context) error
	stop  func()
}

func (f funcService) Start(ctx context.Context) error { return f.start(ctx) }
func (f funcService) Stop() {
	if f.stop != nil {
		f.stop()
	}
}

// Group starts services in stages: every service of a stage is started at
// the same time, each tried again until it runs, and the next stage starts
// once all of them run.
type Group struct {
	logger *slog.Logger
	// FirstRetry and MaxRetry bound the wait between tries (doubling).
	FirstRetry, MaxRetry time.Duration

	stages [][]named

	mu      sync.Mutex
	started []named // in the order they started
	cancel  context.CancelFunc
	done    chan struct{}
}

type named struct {
	name string
	svc  Service
}

// New returns an empty group logging to logger.
func New(logger *slog.Logger) *Group {
	return &Group{logger: logger, FirstRetry: time.Second, MaxRetry: 30 * time.Second, stages: [][]named{nil}}
}

// Add adds a service to the current stage; name is how the log calls it
// ("dead-letter index").
func (g *Group) Add(name string, s Service) {
	last := len(g.stages) - 1
	g.stages[last] = append(g.stages[last], named{name, s})
}

// Then begins a new stage: services added after it start once every
// service added before it runs.
func (g *Group) Then() {
	if len(g.stages[len(g.stages)-1]) > 0 {
		g.stages = append(g.stages, nil)
	}
}

// Start starts the stages in the background and returns at once. ready
// (if not nil) is called when every service runs.
func (g *Group) Start(ctx context.Context, ready func()) {
	ctx, cancel := context.WithCancel(ctx)
	g.mu.Lock()
	g.cancel, g.done = cancel, make(chan struct{})
	g.mu.Unlock()
	go func() {
		defer close(g.done)
		for _, stage := range g.stages {
			var wg sync.WaitGroup
			for _, s := range stage {
				wg.Go(func() { g.startOne(ctx, s) })
			}
			wg.Wait()
			if ctx.Err() != nil {
				return
			}
		}
		if ready != nil {
			ready()
		}
	}()
}

// startOne tries s until it starts or ctx ends.
func (g *Group) startOne(ctx context.Context, s named) {
	wait := g.FirstRetry
	lastErr := ""
	for tries := 1; ; tries++ {
		err := s.svc.Start(ctx)
		if err == nil {
			g.mu.Lock()
			g.started = append(g.started, s)
			g.mu.Unlock()
			if tries > 1 {
				g.logger.Info(s.name+" running", "tries", tries)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		// Once per distinct failure: a part that cannot start for an
		// hour writes one line, not 120.
		if msg := err.Error(); msg != lastErr {
			g.logger.Error(s.name+" is not running yet; retrying until it starts", "err", err, "retry_in", wait)
			lastErr = msg
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, g.MaxRetry)
	}
}

// Stop ends the tries still going and stops every service that started,
// the last started first. Safe without Start.
func (g *Group) Stop() {
	g.mu.Lock()
	cancel, done := g.cancel, g.done
	g.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	g.mu.Lock()
	started := g.started
	g.started = nil
	g.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		started[i].svc.Stop()
	}
}

// Running names the services that run, in the order they started.
func (g *Group) Running() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, len(g.started))
	for i, s := range g.started {
		names[i] = s.name
	}
	return names
}
