package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/directget"
)

// maxLookup is how many ids one lookup asks for: the server answers a
// multi_last direct get for at most 1024 subjects.
const maxLookup = 1024

// processedIDs is the KV bucket of handled message ids. Lookups are
// batched: while one is on its way, the ids workers ask about next queue
// up and go out together in one direct get (multi_last), so a burst of
// messages costs one round trip instead of one per message. The bucket
// stays the record: nothing is remembered in this process.
type processedIDs struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
	nc *nats.Conn
	// direct is the direct-get subject of the bucket's stream, and subject
	// the prefix its keys are published under; direct is empty when the
	// bucket is reached through a domain or API prefix, and each lookup is
	// then a plain KV get.
	direct, subject string
	lookups         chan *lookup

	// pub publishes records without waiting for each PubAck: a JetStream
	// context of the runner's own, so its pending count, ack handler and
	// PublishAsyncComplete are not shared with the service's publishes.
	// Nil when direct is empty: records then go through the KV client.
	pub jetstream.JetStream
	// records carries records from the workers to the one goroutine that
	// publishes them (send): workers publishing each their own contended
	// for the connection's and the publisher's locks.
	records chan record
	// sendMu guards sendEnded: once send has ended (the runner stopping),
	// recordAsync publishes records itself.
	sendMu    sync.RWMutex
	sendEnded bool
	mu        sync.Mutex
	pending   map[*nats.Msg]func(error) // records on their way, to their done
}

// record is one for send to publish.
type record struct {
	m    *nats.Msg
	done func(error)
}

// recordTimeout bounds the wait for a record's PubAck, and the retry of
// one that failed.
const recordTimeout = 5 * time.Second

// lookup is one worker's question: was key processed?
type lookup struct {
	key   string
	found chan bool
}

// newProcessedIDs reads and writes kv; at most inFlight records are on
// their way at once.
func newProcessedIDs(js jetstream.JetStream, kv jetstream.KeyValue, inFlight int) (*processedIDs, error) {
	p := &processedIDs{kv: kv, js: js, nc: js.Conn(), subject: "$KV." + kv.Bucket() + ".", lookups: make(chan *lookup),
		direct: directget.Subject(js, "KV_"+kv.Bucket()), pending: map[*nats.Msg]func(error){},
		records: make(chan record, max(inFlight, 1))}
	if p.direct != "" {
		var err error
		p.pub, err = jetstream.New(p.nc, jetstream.WithPublishAsyncTimeout(recordTimeout),
			jetstream.WithPublishAsyncMaxPending(max(inFlight, 1)),
			jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { p.stored(m, nil) }),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { p.stored(m, err) }))
		if err != nil {
			return nil, fmt.Errorf("service: records publisher: %w", err)
		}
	}
	return p, nil
}

// run answers lookups in batches, and sends the records recordAsync is
// given, until ctx ends.
func (p *processedIDs) run(ctx context.Context) {
	if p.pub != nil {
		go p.send(ctx)
	}
	// One subscription for every batch's answer, not one each.
	var direct *directget.Client
	if p.direct != "" {
		var err error
		if direct, err = directget.NewClient(p.nc); err == nil {
			defer direct.Close() //nolint:errcheck // the runner is stopping
		}
	}
	var batch []*lookup
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case l := <-p.lookups:
			batch = append(batch, l)
		}
	more:
		for len(batch) < maxLookup {
			select {
			case l := <-p.lookups:
				batch = append(batch, l)
			default:
				break more
			}
		}
		found, err := p.lookupAll(ctx, direct, batch)
		if err != nil {
			// The batched form failed (an older server, a permission):
			// ask key by key, as a KV client would.
			found = map[string]bool{}
			for _, l := range batch {
				if _, err := p.kv.Get(ctx, l.key); err == nil {
					found[l.key] = true
				}
			}
		}
		for _, l := range batch {
			l.found <- found[l.key]
		}
	}
}

// seen says whether key was recorded as processed. A failed lookup counts
// as not seen, so the message is handled rather than dropped.
func (p *processedIDs) seen(ctx context.Context, key string) (bool, error) {
	l := &lookup{key: key, found: make(chan bool, 1)}
	select {
	case p.lookups <- l:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return <-l.found, nil // run answers each lookup it took
}

// lookupAll asks for the last entry of every key of batch in one direct
// get through direct (nil: none could be set up).
func (p *processedIDs) lookupAll(ctx context.Context, direct *directget.Client, batch []*lookup) (map[string]bool, error) {
	if direct == nil {
		return nil, errors.New("no direct get")
	}
	subjects := make([]string, len(batch))
	for i, l := range batch {
		subjects[i] = p.subject + l.key
	}
	found := make(map[string]bool, len(batch))
	err := direct.Request(ctx, p.direct, struct {
		MultiLast []string `json:"multi_last"`
	}{subjects}, func(m *nats.Msg) error {
		// A deleted or purged key is not a record of processing.
		if op := m.Header.Get("KV-Operation"); op == "" || op == "PUT" {
			found[strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), p.subject)] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// recordAsync remembers key as processed without waiting for it: done is
// called once the bucket has the record (with nil), or once storing it
// failed, also after a retry that waits (with the error). done must not
// block: it may run on the goroutine that reads every PubAck.
func (p *processedIDs) recordAsync(key string, value []byte, done func(error)) {
	if p.pub == nil {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		done(p.record(ctx, key, value))
		return
	}
	// The key is made of safe characters (processedKey): published as is.
	rec := record{&nats.Msg{Subject: p.subject + key, Data: value}, done}
	p.sendMu.RLock()
	if !p.sendEnded {
		// Never blocks: each caller holds one of the runner's slots, and
		// the channel has room for as many records as there are slots.
		p.records <- rec
		p.sendMu.RUnlock()
		return
	}
	p.sendMu.RUnlock()
	p.publish(rec)
}

// send publishes the records recordAsync is given until ctx ends, then
// those still waiting.
func (p *processedIDs) send(ctx context.Context) {
	for {
		select {
		case rec := <-p.records:
			p.publish(rec)
		case <-ctx.Done():
			p.sendMu.Lock()
			p.sendEnded = true
			p.sendMu.Unlock()
			for {
				select {
				case rec := <-p.records:
					p.publish(rec)
				default:
					return
				}
			}
		}
	}
}

// publish sends rec without waiting for its PubAck.
func (p *processedIDs) publish(rec record) {
	// Known before it is sent: its PubAck may come back before
	// PublishMsgAsync returns.
	p.mu.Lock()
	p.pending[rec.m] = rec.done
	p.mu.Unlock()
	if _, err := p.pub.PublishMsgAsync(rec.m); err != nil {
		// Not sent (too many pending, or disconnected): no handler will
		// hear of it.
		p.stored(rec.m, err)
	}
}

// stored hears how a record sent by recordAsync went. A failed one is
// retried, waiting for its PubAck, on a goroutine of its own.
func (p *processedIDs) stored(m *nats.Msg, err error) {
	p.mu.Lock()
	done, ok := p.pending[m]
	delete(p.pending, m)
	p.mu.Unlock()
	if !ok {
		return
	}
	if err == nil {
		done(nil)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		if _, rerr := p.js.Publish(ctx, m.Subject, m.Data); rerr != nil {
			done(fmt.Errorf("%w (retried: %w)", err, rerr))
			return
		}
		done(nil)
	}()
}

// record remembers key as processed, and returns once the bucket has it.
func (p *processedIDs) record(ctx context.Context, key string, value []byte) error {
	if p.direct == "" {
		_, err := p.kv.Put(ctx, key, value)
		return err
	}
	// The key is made of safe characters (processedKey), so the KV
	// client's key check is skipped: it costs a regexp match per message.
	_, err := p.js.Publish(ctx, p.subject+key, value)
	return err
}
