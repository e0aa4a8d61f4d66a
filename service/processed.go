package service

import (
	"context"
	"errors"
	"strings"

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
}

// lookup is one worker's question: was key processed?
type lookup struct {
	key   string
	found chan bool
}

func newProcessedIDs(js jetstream.JetStream, kv jetstream.KeyValue) *processedIDs {
	return &processedIDs{kv: kv, js: js, nc: js.Conn(), subject: "$KV." + kv.Bucket() + ".", lookups: make(chan *lookup),
		direct: directget.Subject(js, "KV_"+kv.Bucket())}
}

// run answers lookups in batches until ctx ends.
func (p *processedIDs) run(ctx context.Context) {
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
		found, err := p.lookupAll(ctx, batch)
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
// get.
func (p *processedIDs) lookupAll(ctx context.Context, batch []*lookup) (map[string]bool, error) {
	if p.direct == "" {
		return nil, errors.New("no direct get")
	}
	subjects := make([]string, len(batch))
	for i, l := range batch {
		subjects[i] = p.subject + l.key
	}
	found := make(map[string]bool, len(batch))
	err := directget.Request(ctx, p.nc, p.direct, struct {
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
