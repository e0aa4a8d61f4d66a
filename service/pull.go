package service

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker/v2"
)

// pullExpires is how long the server holds one of the runner's pull
// requests; a request still waiting for messages then ends with a 408 and
// gives its slots back. It bounds how long requests sent before a breaker
// opened can still deliver.
const pullExpires = time.Second

// pullSilence is how long the runner waits, while it has requests out, for
// a word from the server (a message or a request's end) beyond
// pullExpires before it takes the requests for lost, as on a reconnect.
const pullSilence = 4 * time.Second

// askFraction sets how many free slots are worth a pull request: a
// quarter of the limit (or all, when nothing else is in flight). On the
// standing subscription a request is one publish; pulls of a quarter
// measured no worse than pulls of half (BenchmarkRunner).
const askFraction = 4

// errorPause is how long the runner waits before asking again after the
// server refused its requests or subscribing failed.
const errorPause = time.Second

// puller is the runner's standing pull: one inbox subscription for all its
// pull requests, each asking only for slots no message holds. A slot is
// taken (a token in Runner.slots) before it is asked for, and given back
// when a request ends without filling it, when the requests are given up
// (a reconnect, a refusal, a silent server), or once its message is
// settled, so never more than Concurrency messages are delivered and not
// yet settled. The loop owns every field: no lock.
type puller struct {
	r       *Runner
	nc      *nats.Conn
	subject string // the consumer's CONSUMER.MSG.NEXT API subject

	sub  *nats.Subscription // nil until subscribed, and after a reset
	msgs chan *nats.Msg     // the subscription's, kept across resets

	free       int // slots taken, not yet asked for
	asked      int // slots asked for, their messages not yet arrived
	askedSince time.Time
	heard      bool      // something arrived since the last watchdog tick
	lastHeard  time.Time // the tick after something last arrived
	pauseUntil time.Time // asking waits after an error until then
	connected  bool
	request    []byte
}

// pull runs the standing pull until ctx ends.
func (r *Runner) pull(ctx context.Context) {
	for _, b := range r.breakers {
		go b.heartbeat(ctx)
	}
	nc := r.js.Conn()
	p := &puller{r: r, nc: nc, subject: apiPrefix(r.js.Options()) + "CONSUMER.MSG.NEXT." + r.cfg.Stream + "." + r.cfg.Consumer,
		// Never full: at most Concurrency messages and one end per
		// request (each asks for a slot at least) are on their way.
		msgs: make(chan *nats.Msg, 2*r.cfg.Concurrency+64), connected: true}
	status := nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	defer nc.RemoveStatusListener(status)
	defer p.close()
	watchdog := time.NewTicker(pullExpires)
	defer watchdog.Stop()
	for ctx.Err() == nil {
		if p.sub == nil && p.connected && time.Now().After(p.pauseUntil) {
			p.subscribe()
		}
		room, wait := p.room()
		var take chan struct{}
		if room > 0 {
			take = r.slots
		}
		var poll <-chan time.Time
		if wait > 0 {
			poll = time.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case m := <-p.msgs:
			if !p.receive(m) {
				// Which request the server refused is not known: all are
				// given up, and asked again after a pause.
				p.reset()
				p.pauseUntil = time.Now().Add(errorPause)
			}
		case take <- struct{}{}:
			p.free++
			for p.free < room {
				select {
				case r.slots <- struct{}{}:
					p.free++
					continue
				default:
				}
				break
			}
		case s := <-status:
			switch s {
			case nats.RECONNECTING:
				p.connected = false
			case nats.CONNECTED:
				// Requests sent before were lost with the connection, or
				// may still be served to the old inbox: give them up.
				p.connected = true
				p.reset()
			}
		case now := <-watchdog.C:
			if p.heard {
				p.heard, p.lastHeard = false, now
			}
			if p.asked > 0 && now.Sub(later(p.lastHeard, p.askedSince)) > pullExpires+pullSilence {
				r.logger.Warn("no word from the server on pull requests; asking again", "asked", p.asked)
				p.reset()
			}
		case <-poll:
		}
		p.ask()
	}
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// room is how many more slots may be taken now: none while a breaker is
// open, a trickle while one is half open and nothing is in flight, else
// what the slots allow. wait, when not zero, is when to look again.
func (p *puller) room() (room int, wait time.Duration) {
	if p.sub == nil || !p.connected {
		return 0, max(time.Until(p.pauseUntil), 10*time.Millisecond)
	}
	limit, poll := cap(p.r.slots), time.Duration(0)
	for _, b := range p.r.breakers {
		switch b.state() {
		case gobreaker.StateOpen:
			limit = 0
		case gobreaker.StateHalfOpen:
			if len(p.r.slots) > p.free {
				limit = 0
			} else {
				limit = min(limit, int(b.cfg.HalfOpenRequests))
			}
		}
		poll = max(poll, b.cfg.OpenFor/20)
	}
	if limit == 0 {
		return 0, max(poll, 10*time.Millisecond)
	}
	return limit - p.free, 0
}

// ask sends a pull request for the free slots, when there are enough to
// be worth one (see askFraction), or when nothing else is in flight.
// A breaker that opened meanwhile (a handler that just failed freed the
// slot taken) gets them back instead.
func (p *puller) ask() {
	if p.free == 0 {
		return
	}
	limit := cap(p.r.slots)
	for _, b := range p.r.breakers {
		switch b.state() {
		case gobreaker.StateOpen:
			p.give(p.free)
			p.free = 0
			return
		case gobreaker.StateHalfOpen:
			limit = min(limit, int(b.cfg.HalfOpenRequests))
		}
	}
	if p.sub == nil || !p.connected {
		p.give(p.free)
		p.free = 0
		return
	}
	if p.free < max(1, limit/askFraction) && p.free < len(p.r.slots) {
		return
	}
	expires := pullExpires
	if p.r.expires > 0 {
		expires = min(expires, p.r.expires)
	}
	for p.free > 0 {
		n := p.free
		if p.r.maxBatch > 0 {
			n = min(n, p.r.maxBatch)
		}
		p.request = strconv.AppendInt(append(p.request[:0], `{"batch":`...), int64(n), 10)
		p.request = append(p.request, `,"expires":`...)
		p.request = append(strconv.AppendInt(p.request, int64(expires), 10), '}')
		if err := p.nc.PublishRequest(p.subject, p.sub.Subject, p.request); err != nil {
			p.r.logger.Warn("pull request failed; asking again", "err", err)
			p.give(p.free)
			p.free = 0
			p.pauseUntil = time.Now().Add(errorPause)
			return
		}
		if p.asked == 0 {
			p.askedSince = time.Now()
		}
		p.asked += n
		p.free -= n
	}
}

// give gives back n slots.
func (p *puller) give(n int) {
	for range n {
		<-p.r.slots
	}
}

// subscribe makes the inbox the pull requests answer to.
func (p *puller) subscribe() {
	sub, err := p.nc.ChanSubscribe(p.nc.NewInbox(), p.msgs)
	if err != nil {
		p.r.logger.Warn("pull subscription failed; trying again", "err", err)
		p.pauseUntil = time.Now().Add(errorPause)
		return
	}
	p.sub = sub
}

// receive hands a message to a worker (its slot taken when it was asked
// for), or accounts for a request's end. ok is false when the server
// refused requests without saying which.
func (p *puller) receive(m *nats.Msg) (ok bool) {
	p.heard = true
	if len(m.Data) > 0 || len(m.Header) == 0 || m.Header.Get("Status") == "" {
		if p.asked == 0 {
			// No request of the runner's asked for it: a slot it would take
			// is not there. The server sends it again at once.
			p.r.logger.Warn("message arrived with no pull request asking for it; handed back", "subject", m.Subject)
			(&pulledMsg{msg: m, nc: p.nc}).Nak() //nolint:errcheck // redelivered after AckWait anyway
			return true
		}
		p.asked--
		p.r.work <- &pulledMsg{msg: m, nc: p.nc}
		return true
	}
	status := m.Header.Get("Status")
	if status == "100" { // an idle heartbeat
		return true
	}
	// A request that ended before it was filled says how many it left
	// (408 when it expired, 409 at a size limit): those slots come back.
	if left := m.Header.Get("Nats-Pending-Messages"); left != "" {
		if n, err := strconv.Atoi(left); err == nil {
			n = min(max(n, 0), p.asked)
			p.asked -= n
			p.give(n)
			return true
		}
	}
	// Any other end: the consumer deleted or moved to another leader, too
	// many waiting requests, no JetStream.
	p.r.logger.Warn("pull request refused; asking again", "status", status, "description", m.Header.Get("Description"))
	return false
}

// reset gives up the requests out: it unsubscribes their inbox, so the
// server drops any it still holds (it has nobody to deliver to), hands
// over the messages that arrived before that, and gives back the slots of
// the rest. The loop subscribes a new inbox.
func (p *puller) reset() {
	if p.sub != nil {
		p.sub.Unsubscribe() //nolint:errcheck // gone with the connection anyway
		p.sub = nil
	}
	// Nothing reaches the channel once Unsubscribe has returned.
	for {
		select {
		case m := <-p.msgs:
			p.receive(m) // a refusal ends all requests: they are given up here
			continue
		default:
		}
		break
	}
	p.give(p.asked + p.free)
	p.asked, p.free = 0, 0
}

// close ends the pull when the runner stops: messages that arrived and
// were not handed over are given back to the server at once.
func (p *puller) close() {
	if p.sub != nil {
		p.sub.Unsubscribe() //nolint:errcheck // gone with the connection anyway
		p.sub = nil
	}
	for {
		select {
		case m := <-p.msgs:
			if len(m.Data) > 0 || len(m.Header) == 0 || m.Header.Get("Status") == "" {
				(&pulledMsg{msg: m, nc: p.nc}).Nak() //nolint:errcheck // redelivered after AckWait anyway
			}
			continue
		default:
		}
		break
	}
	p.give(p.asked + p.free)
	p.asked, p.free = 0, 0
}

// apiPrefix is the JetStream API prefix js uses.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix == "":
		return jetstream.DefaultAPIPrefix
	case o.APIPrefix[len(o.APIPrefix)-1] != '.':
		return o.APIPrefix + "."
	}
	return o.APIPrefix
}
