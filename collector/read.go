package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetwatch/jetwatch/store"
)

// Codes of JetStream API errors that say a stream or consumer cannot be
// read now, from nats-server's server/jetstream_errors_generated.go.
const (
	errCodeClusterNotAvailable   = 10008 // JSClusterNotAvailErr: no meta leader
	errCodeStreamOffline         = 10118 // JSStreamOfflineErr
	errCodeConsumerOffline       = 10119 // JSConsumerOfflineErr
	errCodeStreamOfflineReason   = 10194 // JSStreamOfflineReasonErrF
	errCodeConsumerOfflineReason = 10195 // JSConsumerOfflineReasonErrF
)

// listing is what one JetStream listing covers: the account's streams, or
// one stream's consumers.
//
// A LIST request is answered by the meta leader after it has gathered
// every item's info from its leader, waiting up to listGatherWait for
// leaders that do not answer, which it then names as missing. So while a
// leader is unreachable LIST answers late, and while the meta leader is
// gone it never does. What LIST missed is read with one INFO per item, so
// one unreachable leader costs one request's timeout and marks one item;
// and while something stays unread the next cycles read item by item
// from the start: NAMES (from the meta leader's assignments, without
// gathering), or the names known from earlier cycles, then INFO.
type listing struct {
	// what names the items in messages: "streams", "consumers of ORDERS".
	what  string
	list  string // LIST subject
	names string // NAMES subject
	// info is the INFO subject of one item.
	info func(name string) string
	// gone is the error code saying an item no longer exists; parentGone
	// says the same of what the listing belongs to (a consumer's stream).
	gone, parentGone jetstream.ErrorCode
}

// listed is what reading one listing found.
type listed[T any] struct {
	items []*T
	// unread are the items known to exist that could not be read, by name.
	unread map[string]store.Unread
	// complete is set when every item that exists is in items or unread:
	// an item stored before and in neither is gone.
	complete bool
	// problem says, when set, why the listing was not read in one go.
	problem error
	// namesFailed is set when even the names had to come from earlier
	// cycles.
	namesFailed bool
	// parentGone is set when what the listing belongs to was deleted.
	parentGone bool
	// notReached is set when the cycle's time ran out before the listing
	// could be asked for at all: nothing was read, and nothing is known
	// about NATS from it.
	notReached bool
	// refused is set when NATS was asked and did not answer, or answered
	// with an error, for the listing or one of its items.
	refused bool
	// late is set when the cycle's time ran out before some of it could
	// be asked for; lateItems names the items it left unread.
	late      bool
	lateItems []string
}

// stillByItem says whether the next cycle should read the listing item by
// item: NATS was asked and something could not be read, so LIST would only
// keep the next cycle waiting for it. What the cycle ran out of time for
// before asking says nothing about NATS: it is read first next time, the
// usual way.
func (l listed[T]) stillByItem() bool {
	return l.refused
}

// listGatherWait is how long the meta leader waits for the leaders of a
// LIST's items before it answers without them (nats-server's
// jsClusteredStreamListRequest and jsClusteredConsumerListRequest).
const listGatherWait = 4 * time.Second

// listPage is a page of a LIST or NAMES answer: LIST carries infos, NAMES
// names, under "streams" or "consumers". Missing and Offline name items
// the meta leader could not gather.
type listPage[T any] struct {
	Total     int                 `json:"total"`
	Offset    int                 `json:"offset"`
	Limit     int                 `json:"limit"`
	Streams   []T                 `json:"streams"`
	Consumers []T                 `json:"consumers"`
	Missing   []string            `json:"missing"`
	Offline   map[string]string   `json:"offline"`
	Error     *jetstream.APIError `json:"error,omitempty"`
}

func (p *listPage[T]) apiError() *jetstream.APIError { return p.Error }

func (p *listPage[T]) page() []T {
	if p.Streams != nil {
		return p.Streams
	}
	return p.Consumers
}

// errorAnswer is the error part of an INFO answer.
type errorAnswer struct {
	Error *jetstream.APIError `json:"error,omitempty"`
}

func (e *errorAnswer) apiError() *jetstream.APIError { return e.Error }

// readListing reads every item of l. With byItem it goes item by item
// at once (NATS could not answer for all of them last cycle); known are
// the names stored from earlier cycles, read one by one when NAMES fails
// too. got is called, from any goroutine, with each item as soon as its
// page is read, so the work that follows starts while the rest is read.
func readListing[T any](ctx context.Context, s *Sampler, l listing, byItem bool, known func() ([]string, error),
	nameOf func(*T) string, got func(*T)) listed[T] {
	res := listed[T]{unread: map[string]store.Unread{}}
	var mu sync.Mutex
	have := map[string]bool{}
	keep := func(item *T) {
		name := nameOf(item)
		mu.Lock()
		first := !have[name]
		if first {
			have[name] = true
			res.items = append(res.items, item)
		}
		mu.Unlock()
		if first { // a page boundary that moved may repeat an item
			got(item)
		}
	}
	// outOfTime marks what is known and was not read as such, without
	// asking: nothing more can be asked this cycle.
	outOfTime := func(names []string) {
		u := s.unreadFrom(ctx, errOutOfTime)
		mu.Lock()
		defer mu.Unlock()
		res.late = true
		for _, name := range names {
			if !have[name] {
				res.unread[name] = u
				res.lateItems = append(res.lateItems, name)
			}
		}
	}

	var retry []string // items LIST could not gather
	if !byItem {
		changed, err := listAll(ctx, s, l.list, s.cfg.RequestTimeout+listGatherWait, func(items []*T, missing []string) {
			for _, item := range items {
				// The meta leader puts an offline item among the others,
				// without its state: read it on its own.
				if !slices.Contains(missing, nameOf(item)) {
					keep(item)
				}
			}
			mu.Lock()
			retry = append(retry, missing...)
			// The meta leader could not gather them: their leaders are
			// unreachable, and the next LIST would wait for them again.
			res.refused = res.refused || len(missing) > 0
			mu.Unlock()
		})
		switch {
		case isCode(err, l.parentGone):
			res.parentGone = true
			return res
		case err == nil:
			// Streams or consumers created or deleted between two pages
			// shift the pages: NAMES then says what a page skipped.
			res.complete = !changed
		case errors.Is(err, errOutOfTime):
			res.notReached, res.late = len(res.items) == 0, true
			res.problem = fmt.Errorf("listing %s: %w", l.what, err)
		default:
			res.refused = true
			res.problem = fmt.Errorf("listing %s: %w", l.what, err)
		}
	}
	if !res.complete {
		var names []string
		var err error
		if res.problem == nil || !errors.Is(res.problem, errOutOfTime) {
			names, err = listNames(ctx, s, l.names)
		} else {
			err = errOutOfTime
		}
		if isCode(err, l.parentGone) {
			res.parentGone = true
			return res
		}
		res.complete = err == nil
		if err != nil {
			if !errors.Is(err, errOutOfTime) {
				res.refused = true
				res.namesFailed = true
			}
			if res.problem == nil {
				res.problem = fmt.Errorf("listing %s: %w", l.what, err)
			}
			// Go on with what is known; anything new waits for NAMES.
			stored, serr := known()
			res.complete = serr == nil
			names = stored
			if errors.Is(err, errOutOfTime) {
				outOfTime(names)
				return res
			}
		}
		retry = append(retry, names...)
	}

	var todo []string
	for _, name := range retry {
		if !have[name] {
			have[name] = true // asked once, even when named twice
			todo = append(todo, name)
		}
	}
	var wg sync.WaitGroup
	for _, name := range todo {
		wg.Go(func() {
			var item T
			err := s.requestInfo(ctx, l.info(name), &item)
			switch {
			case err == nil:
				mu.Lock()
				res.items = append(res.items, &item)
				mu.Unlock()
				got(&item)
			case isCode(err, l.gone) || isCode(err, l.parentGone):
				// Deleted since it was listed or stored: nothing to show.
			default:
				u := s.unreadFrom(ctx, err)
				mu.Lock()
				res.unread[name] = u
				if errors.Is(err, errOutOfTime) {
					res.late = true
					res.lateItems = append(res.lateItems, name)
				} else {
					res.refused = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// isCode says whether err is a JetStream API error with code.
func isCode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return code != 0 && errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// listNames pages through a NAMES subject.
func listNames(ctx context.Context, s *Sampler, subject string) ([]string, error) {
	var out []string
	_, err := listAll(ctx, s, subject, s.cfg.RequestTimeout, func(names []*string, _ []string) {
		for _, n := range names {
			out = append(out, *n)
		}
	})
	return out, err
}

// listAll pages through a LIST or NAMES subject, one request of at most
// timeout per page, handing each page's items and the names the meta
// leader could not gather to page as it comes. changed says the total
// changed between pages, so a page may have skipped items.
func listAll[T any](ctx context.Context, s *Sampler, subject string, timeout time.Duration,
	page func(items []*T, missing []string)) (changed bool, err error) {
	total := -1
	for offset := 0; ; {
		var p listPage[*T]
		if err := s.request(ctx, timeout, subject, map[string]int{"offset": offset}, &p); err != nil {
			return changed, err
		}
		got := p.page()
		items := make([]*T, 0, len(got))
		for _, item := range got {
			if item != nil {
				items = append(items, item)
			}
		}
		missing := p.Missing
		for name := range p.Offline {
			missing = append(missing, name)
		}
		page(items, missing)
		changed = changed || (total >= 0 && p.Total != total)
		total = p.Total
		offset += len(got)
		if len(got) == 0 || offset >= p.Total {
			return changed, nil
		}
	}
}

// errOutOfTime says the cycle's time ran out before a request could be
// sent, or before NATS had had RequestTimeout to answer it: it says
// nothing about NATS.
var errOutOfTime = errors.New("the sample cycle's time ran out before NATS was asked or could answer")

// request sends one JetStream API request, bounded by timeout and counted
// against Concurrency, and decodes the answer into resp. It returns
// errOutOfTime when ctx ends before the request is sent or, having been
// sent, before RequestTimeout.
func (s *Sampler) request(ctx context.Context, timeout time.Duration, subject string, req any, resp apiResponse) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errOutOfTime, ctx.Err())
	}
	select {
	case s.inflight <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errOutOfTime, ctx.Err())
	}
	defer func() { <-s.inflight }()
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errOutOfTime, ctx.Err())
	}
	sent := time.Now()
	err := apiRequest(ctx, s.nc, timeout, subject, req, resp)
	if err != nil && ctx.Err() != nil && time.Since(sent) < s.cfg.RequestTimeout {
		return fmt.Errorf("%w: %w", errOutOfTime, err)
	}
	return err
}

// requestInfo sends an INFO request and decodes a successful answer into
// info.
func (s *Sampler) requestInfo(ctx context.Context, subject string, info any) error {
	var raw json.RawMessage
	ans := rawAnswer{raw: &raw, info: info}
	if err := s.request(ctx, s.cfg.RequestTimeout, subject, struct{}{}, &ans); err != nil {
		return err
	}
	if ans.decoded {
		return nil
	}
	if err := json.Unmarshal(raw, info); err != nil {
		return fmt.Errorf("decode %s answer: %w", subject, err)
	}
	return nil
}

// rawAnswer keeps an answer's bytes and decodes only its error.
type rawAnswer struct {
	raw *json.RawMessage
	errorAnswer
	// info is what a successful answer holds; decoded says decodeFast
	// decoded it straight from the answer.
	info    any
	decoded bool
}

func (a *rawAnswer) UnmarshalJSON(data []byte) error {
	*a.raw = append(json.RawMessage(nil), data...)
	return json.Unmarshal(data, &a.errorAnswer)
}

// unreadFrom says, in the operator's words, why a request failed.
func (s *Sampler) unreadFrom(ctx context.Context, err error) store.Unread {
	var apiErr *jetstream.APIError
	switch {
	case ctx.Err() != nil, errors.Is(err, errOutOfTime):
		return store.Unread{Why: store.UnreadNoResponse,
			Detail: fmt.Sprintf("not read before the sample cycle's time (%s) ran out", s.cfg.CycleTimeout)}
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode {
		case errCodeStreamOffline, errCodeConsumerOffline, errCodeStreamOfflineReason, errCodeConsumerOfflineReason:
			return store.Unread{Why: store.UnreadNoLeader,
				Detail: "NATS says it is offline (" + apiErr.Description + "): none of its servers is up"}
		case errCodeClusterNotAvailable:
			return store.Unread{Why: store.UnreadNoLeader,
				Detail: "JetStream has no meta leader: an election is under way or too few servers are up"}
		}
		return store.Unread{Why: store.UnreadError, Detail: fmt.Sprintf("NATS answered %q (error %d)", apiErr.Description, apiErr.ErrorCode)}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return store.Unread{Why: store.UnreadNoResponse,
			Detail: fmt.Sprintf("no answer within %s: its leader is unreachable or being elected", s.cfg.RequestTimeout)}
	case errors.Is(err, nats.ErrNoResponders):
		return store.Unread{Why: store.UnreadNoResponse, Detail: "no server answered: JetStream is not available"}
	}
	return store.Unread{Why: store.UnreadError, Detail: err.Error()}
}
