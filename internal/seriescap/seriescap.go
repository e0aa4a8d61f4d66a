// Package seriescap bounds the label values a metric is counted by when
// they come from outside: a stream and consumer named in an advisory, a
// dead letter's envelope, a service's breaker report. Anyone allowed to
// publish them could otherwise add a series to /metrics with each one.
package seriescap

import (
	"sync"

	"github.com/jetwatch/jetwatch/internal/natsname"
)

// Other is the label value of everything counted together: pairs past
// the cap, and names NATS could not have given.
const Other = "(other)"

// Pairs is a capped set of label pairs: the first max pairs seen keep
// their values. Safe for concurrent use.
type Pairs struct {
	mu   sync.Mutex
	seen map[[2]string]bool
	max  int
}

// New returns a set that admits max pairs.
func New(max int) *Pairs { return &Pairs{seen: map[[2]string]bool{}, max: max} }

// Admit says whether the pair a, b has series of its own: it has, or
// there is room for it (and now it has).
func (p *Pairs) Admit(a, b string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := [2]string{a, b}
	if p.seen[k] {
		return true
	}
	if len(p.seen) >= p.max {
		return false
	}
	p.seen[k] = true
	return true
}

// Forget makes the room of a pair whose series are gone.
func (p *Pairs) Forget(a, b string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.seen, [2]string{a, b})
}

// Names are the labels of a stream and consumer: their names when NATS
// could have given them and the pair is admitted, Other twice otherwise.
func (p *Pairs) Names(stream, consumer string) (string, string) {
	if natsname.Name(stream) != nil || natsname.Name(consumer) != nil || !p.Admit(stream, consumer) {
		return Other, Other
	}
	return stream, consumer
}
