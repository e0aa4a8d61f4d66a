package streambrowse

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/internal/directget"
	"github.com/jetwatch/jetwatch/internal/natsname"
)

const (
	// DefaultLimit is how many messages a page holds unless asked.
	DefaultLimit = 50
	// MaxLimit is the most messages one page holds.
	MaxLimit = 500
	// MaxShownPayload is how much of one payload a page keeps: a stream
	// may hold messages of up to 64 MiB, and a page holds up to MaxLimit.
	// Message.Size says how large it was.
	MaxShownPayload = 64 << 10
	// maxScan is how many sequences a newest-first page looks back over
	// for matches of a subject filter before it answers with what it
	// found and a cursor to go on from.
	maxScan = 200_000
	// maxWindow is the most sequences one backward step reads.
	maxWindow = 10_000
	// requestBytes bounds one direct-get batch answer.
	requestBytes = 4 << 20
	// requestTimeout bounds each request to the server; browseTimeout a
	// whole page.
	requestTimeout = 5 * time.Second
	browseTimeout  = 20 * time.Second
)

// ErrUnknownStream is wrapped when the stream does not exist.
var ErrUnknownStream = errors.New("unknown stream")

// Query says which messages of a stream to read. At most one of StartSeq,
// Since and Around is set; with none, the page holds the newest messages.
type Query struct {
	// Subject filters by subject; wildcards allowed. Empty: every subject.
	Subject string
	// StartSeq reads from this sequence: oldest first, or with Newest
	// backwards from it (it included).
	StartSeq uint64
	// Newest reads backwards from StartSeq.
	Newest bool
	// Since reads oldest first from the first message stored at or after it.
	Since time.Time
	// Around reads the messages on either side of this sequence (it
	// included), oldest first: about half the limit before it.
	Around uint64
	// Limit is the most messages returned. Defaults to DefaultLimit; at
	// most MaxLimit.
	Limit int
}

// Message is one stored message as read.
type Message struct {
	Seq     uint64              `json:"seq"`
	Subject string              `json:"subject"`
	Time    time.Time           `json:"time"`
	Size    int                 `json:"size"` // of the payload as stored
	Headers map[string][]string `json:"headers"`
	// Payload is the first MaxShownPayload bytes of the payload.
	Payload   []byte `json:"payload"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Page is one page of messages.
type Page struct {
	Items []Message
	// NextSeq is the StartSeq of the next page in the same order, 0 when
	// there is none.
	NextSeq uint64
	// Newest says Items run newest first.
	Newest bool
	// ScanStopped says a newest-first page stopped looking back after
	// maxScan sequences with fewer matches than asked for; NextSeq goes on.
	ScanStopped bool
	// FirstSeq and LastSeq are the stream's when read.
	FirstSeq, LastSeq uint64
}

// Browser reads streams' messages on one connection.
type Browser struct {
	nc *nats.Conn
	js jetstream.JetStream
	// scanLimit is maxScan; tests lower it.
	scanLimit uint64
	// clients are idle direct-get clients: a subscription per request
	// would cost more than the request (nats.go allocates 512 KiB for
	// each), and a Client serves one request at a time.
	clients chan *directget.Client
}

// idleClients is how many direct-get clients stay subscribed between
// pages: each holds a subscription and its 512 KiB channel.
const idleClients = 2

// client takes an idle direct-get client or makes one.
func (b *Browser) client() (*directget.Client, error) {
	select {
	case c := <-b.clients:
		return c, nil
	default:
		return directget.NewClient(b.nc)
	}
}

// release keeps c for the next page, or closes it when enough are idle.
func (b *Browser) release(c *directget.Client) {
	select {
	case b.clients <- c:
	default:
		c.Close() //nolint:errcheck // an unsubscribe on a closed connection is moot
	}
}

// New is a Browser on nc.
func New(nc *nats.Conn) (*Browser, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("stream browser: %w", err)
	}
	return &Browser{nc: nc, js: js, scanLimit: maxScan, clients: make(chan *directget.Client, idleClients)}, nil
}

// Check validates q and the stream name as Messages does, without asking
// the server; its errors wrap natsname.ErrInvalid.
func Check(stream string, q Query) error {
	if err := natsname.Name(stream); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if q.Subject != "" {
		if err := natsname.Filter(q.Subject); err != nil {
			return err
		}
	}
	set := 0
	for _, b := range []bool{q.StartSeq > 0, !q.Since.IsZero(), q.Around > 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("%w query: give one of a start sequence, a time or a sequence to look around", natsname.ErrInvalid)
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w limit: %d, use 1 to %d", natsname.ErrInvalid, q.Limit, MaxLimit)
	}
	return nil
}

// Messages reads one page of stream's messages. An unknown stream wraps
// ErrUnknownStream; a bad name or query wraps natsname.ErrInvalid and
// sends nothing to the server.
func (b *Browser) Messages(ctx context.Context, stream string, q Query) (Page, error) {
	if err := Check(stream, q); err != nil {
		return Page{}, err
	}
	q.Limit = cmp.Or(q.Limit, DefaultLimit)
	ctx, cancel := context.WithTimeout(ctx, browseTimeout)
	defer cancel()
	ictx, icancel := context.WithTimeout(ctx, requestTimeout)
	s, err := b.js.Stream(ictx, stream)
	icancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Page{}, fmt.Errorf("stream %s: %w", stream, ErrUnknownStream)
	}
	if err != nil {
		return Page{}, fmt.Errorf("stream %s: info: %w", stream, err)
	}
	info := s.CachedInfo()
	r := &reader{nc: b.nc, stream: stream, filter: cmp.Or(q.Subject, ">"), api: apiPrefix(b.js), scanLimit: b.scanLimit}
	if info.Config.AllowDirect {
		if r.direct = directget.Subject(b.js, stream); r.direct != "" {
			if r.client, err = b.client(); err != nil {
				return Page{}, fmt.Errorf("stream %s: %w", stream, err)
			}
			defer b.release(r.client)
		}
	}
	p := Page{FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq}
	if info.State.Msgs == 0 {
		return p, nil
	}
	switch {
	case q.Around > 0:
		half := q.Limit / 2
		var older []Message
		if q.Around > 1 && half > 0 {
			older, _, _, err = r.backward(ctx, q.Around-1, p.FirstSeq, half)
			if err != nil {
				return Page{}, err
			}
		}
		newer, next, err := r.forward(ctx, q.Around, time.Time{}, q.Limit-len(older))
		if err != nil {
			return Page{}, err
		}
		for i := len(older) - 1; i >= 0; i-- {
			p.Items = append(p.Items, older[i])
		}
		p.Items, p.NextSeq = append(p.Items, newer...), next
	case q.StartSeq > 0 && !q.Newest, !q.Since.IsZero():
		p.Items, p.NextSeq, err = r.forward(ctx, q.StartSeq, q.Since, q.Limit)
	default:
		from := p.LastSeq
		if q.StartSeq > 0 {
			from = min(q.StartSeq, p.LastSeq)
		}
		p.Newest = true
		p.Items, p.NextSeq, p.ScanStopped, err = r.backward(ctx, from, p.FirstSeq, q.Limit)
	}
	if err != nil {
		return Page{}, err
	}
	return p, nil
}

// reader reads one stream's messages matching filter.
type reader struct {
	nc     *nats.Conn
	stream string
	filter string
	direct string // direct-get subject, "" to use the message-get API
	client *directget.Client
	api    string // JetStream API prefix
	// scanLimit is how many sequences a backward read looks over.
	scanLimit uint64
}

// forward reads up to n messages from sequence from (or from the first
// stored at or after since), oldest first; next is the sequence the next
// page starts at, 0 when no message follows.
func (r *reader) forward(ctx context.Context, from uint64, since time.Time, n int) (msgs []Message, next uint64, err error) {
	msgs, err = r.fetch(ctx, max(from, 1), since, n+1, 0, 0)
	if err != nil {
		return nil, 0, err
	}
	if len(msgs) > n {
		next = msgs[n].Seq
		msgs = msgs[:n]
	}
	return msgs, next, nil
}

// backward reads up to n messages at or before sequence hi, newest first,
// in windows that grow as matches prove sparse. next is the sequence the
// next page starts at, 0 when it would be before first.
func (r *reader) backward(ctx context.Context, hi, first uint64, n int) (msgs []Message, next uint64, stopped bool, err error) {
	first = max(first, 1)
	window := uint64(max(n, 64))
	scanned := uint64(0)
	for hi >= first && len(msgs) < n {
		if scanned >= r.scanLimit {
			return msgs, hi, true, nil
		}
		lo := first
		if hi-first+1 > window {
			lo = hi - window + 1
		}
		got, err := r.fetch(ctx, lo, time.Time{}, -1, hi, n-len(msgs))
		if err != nil {
			return nil, 0, false, err
		}
		// Keep the newest: this window's last matches come first.
		for i := len(got) - 1; i >= 0 && len(msgs) < n; i-- {
			msgs = append(msgs, got[i])
		}
		scanned += hi - lo + 1
		hi = lo - 1
		window = min(window*2, maxWindow)
	}
	if len(msgs) == n && msgs[n-1].Seq > first {
		next = msgs[n-1].Seq - 1
	}
	return msgs, next, false, nil
}

// fetch reads matching messages from sequence from (or since, when set)
// oldest first: up to n of them (n < 0: no count limit), and none past
// sequence upTo (0: no limit), keeping only the last keep (0: all). The
// server skips deleted sequences.
func (r *reader) fetch(ctx context.Context, from uint64, since time.Time, n int, upTo uint64, keep int) ([]Message, error) {
	var out []Message
	trim := func() {
		if keep > 0 && len(out) > keep {
			out = append(out[:0:0], out[len(out)-keep:]...)
		}
	}
	for n < 0 || len(out) < n {
		req := getRequest{Seq: from, NextFor: r.filter}
		if !since.IsZero() {
			at := since
			req.Seq, req.StartTime = 0, &at
			since = time.Time{}
		}
		var got []Message
		var err error
		if r.direct != "" {
			req.Batch = maxWindow
			if n > 0 {
				req.Batch = min(n-len(out), maxWindow)
			} else if upTo > 0 {
				req.Batch = int(min(upTo-from+1, maxWindow))
			}
			if keep > 0 {
				// A batch goes on past upTo while it has matches to
				// send: ask for no more than are kept, and go on.
				req.Batch = min(req.Batch, keep)
			}
			req.MaxBytes = requestBytes
			got, err = r.directBatch(ctx, req)
		} else {
			got, err = r.getOne(ctx, req)
		}
		if err != nil {
			return nil, err
		}
		for _, m := range got {
			if upTo > 0 && m.Seq > upTo || n >= 0 && len(out) == n {
				trim()
				return out, nil
			}
			out = append(out, m)
		}
		trim()
		if len(got) == 0 {
			return out, nil
		}
		from = got[len(got)-1].Seq + 1
		if upTo > 0 && from > upTo {
			return out, nil
		}
	}
	return out, nil
}

// getRequest is the server's JSApiMsgGetRequest, the fields used here.
type getRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// directHeaders are what a direct get adds to each message's headers.
var directHeaders = []string{jetstream.StreamHeader, jetstream.SubjectHeader, jetstream.SequenceHeader,
	jetstream.TimeStampHeaer, "Nats-Num-Pending", "Nats-Last-Sequence"}

func (r *reader) directBatch(ctx context.Context, req getRequest) ([]Message, error) {
	var out []Message
	err := r.client.Request(ctx, r.direct, req, func(m *nats.Msg) error {
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return fmt.Errorf("direct get of %s: a message without a sequence", r.stream)
		}
		at, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
		subject := m.Header.Get(jetstream.SubjectHeader)
		h := m.Header
		for _, name := range directHeaders {
			h.Del(name)
		}
		out = append(out, newMessage(seq, subject, at, h, m.Data))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: direct get from %d: %w", r.stream, req.Seq, err)
	}
	return out, nil
}

// getResponse is the server's JSApiMsgGetResponse.
type getResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message"`
}

// errCodeNoMessage is JSNoMessageFoundErr: nothing at or after the sequence.
const errCodeNoMessage = 10037

// getOne reads the next matching message through the message-get API,
// for streams without direct gets.
func (r *reader) getOne(ctx context.Context, req getRequest) ([]Message, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := r.nc.RequestWithContext(rctx, r.api+"STREAM.MSG.GET."+r.stream, body)
	if err != nil {
		return nil, fmt.Errorf("stream %s: get message from %d: %w", r.stream, req.Seq, err)
	}
	var gr getResponse
	if err := json.Unmarshal(resp.Data, &gr); err != nil {
		return nil, fmt.Errorf("stream %s: get message: %w", r.stream, err)
	}
	switch {
	case gr.Error != nil && gr.Error.ErrCode == errCodeNoMessage:
		return nil, nil
	case gr.Error != nil:
		return nil, fmt.Errorf("stream %s: get message from %d: %s (%d)", r.stream, req.Seq, gr.Error.Description, gr.Error.ErrCode)
	case gr.Message == nil:
		return nil, nil
	}
	var h nats.Header
	if len(gr.Message.Header) > 0 {
		if h, err = nats.DecodeHeadersMsg(gr.Message.Header); err != nil {
			// The server checked them when it stored the message; headers
			// it cannot give back readable are left out rather than
			// failing the page.
			h = nil
		}
	}
	return []Message{newMessage(gr.Message.Seq, gr.Message.Subject, gr.Message.Time, h, gr.Message.Data)}, nil
}

func newMessage(seq uint64, subject string, at time.Time, h nats.Header, data []byte) Message {
	m := Message{Seq: seq, Subject: subject, Time: at.UTC(), Size: len(data), Headers: map[string][]string(h)}
	if m.Headers == nil {
		m.Headers = map[string][]string{}
	}
	if len(data) > MaxShownPayload {
		data, m.Truncated = data[:MaxShownPayload], true
	}
	// A copy: the page outlives the read, and a cut payload must not
	// keep the whole one alive.
	m.Payload = append([]byte(nil), data...)
	return m
}

// apiPrefix is where js sends JetStream API requests.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	if o.Domain != "" {
		return "$JS." + o.Domain + ".API."
	}
	return cmp.Or(o.APIPrefix, jetstream.DefaultAPIPrefix)
}
