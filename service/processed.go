package service

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
// batched: the runner looks up each burst of messages that arrived in one
// direct get (multi_last), so a burst costs one round trip instead of one
// per message. The bucket stays the record: nothing is remembered in this
// process.
type processedIDs struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
	nc *nats.Conn
	// direct is the direct-get subject of the bucket's stream, and subject
	// the prefix its keys are published under; direct is empty when the
	// bucket is reached through a domain or API prefix, and each lookup is
	// then a plain KV get.
	direct, subject string

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

// newProcessedIDs reads and writes kv; at most inFlight records are on
// their way at once.
func newProcessedIDs(js jetstream.JetStream, kv jetstream.KeyValue, inFlight int) (*processedIDs, error) {
	p := &processedIDs{kv: kv, js: js, nc: js.Conn(), subject: "$KV." + kv.Bucket() + ".",
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

// run sends the records recordAsync is given until ctx ends.
func (p *processedIDs) run(ctx context.Context) {
	if p.pub != nil {
		p.send(ctx)
	}
}

// lookup says which of keys were recorded as processed, in one direct get
// (multi_last) through direct (nil: none could be set up), or key by key
// should that fail (an older server, a permission). A key whose lookup
// failed counts as not seen, so its message is handled rather than
// dropped; err is ctx's once it has ended.
func (p *processedIDs) lookup(ctx context.Context, direct *directget.Client, keys []string) (map[string]bool, error) {
	found, err := p.lookupAll(ctx, direct, keys)
	if err == nil {
		return found, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	found = make(map[string]bool, len(keys))
	for _, key := range keys {
		_, err := p.kv.Get(ctx, key)
		switch {
		case err == nil:
			found[key] = true
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			// NATS did not answer (a timeout, no leader): each key left
			// would wait as long, holding the whole burst. They count as
			// not seen, as a failed lookup does.
			return found, ctx.Err()
		}
	}
	return found, ctx.Err()
}

// seen says whether key was recorded as processed: one lookup alone, for
// a duplicate that waited for another delivery of its id. A failed lookup
// counts as not seen; err is ctx's once it has ended.
func (p *processedIDs) seen(ctx context.Context, key string) (bool, error) {
	_, err := p.kv.Get(ctx, key)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return err == nil, nil
}

// lookupAll asks for the last entry of every one of keys in one direct
// get through direct (nil: none could be set up). At most maxLookup keys.
func (p *processedIDs) lookupAll(ctx context.Context, direct *directget.Client, keys []string) (map[string]bool, error) {
	if direct == nil {
		return nil, errors.New("no direct get")
	}
	subjects := make([]string, len(keys))
	for i, key := range keys {
		subjects[i] = p.subject + key
	}
	found := make(map[string]bool, len(keys))
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
			// Workers finishing meanwhile add theirs: all go out back to
			// back, so the connection writes them together.
			runtime.Gosched()
			p.publish(rec)
			for drained := false; !drained; {
				select {
				case rec := <-p.records:
					p.publish(rec)
				default:
					drained = true
				}
			}
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
