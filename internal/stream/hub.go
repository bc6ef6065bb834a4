// Package stream is the one engine that delivers order events to browsers
// as Server-Sent Events, from a stream's subscription to its end.
//
// A web handler checks who may see what, reads the client's cursor, and
// calls Hub.Serve with a Subscription (AllOrders, OneOrder, SomeOrders) and
// a Replay that reads the log; the hub does the rest, the same way for
// every stream and every transport. Read hub.go (the hub and Publish),
// serve.go (a stream's start), shard.go (the writer that serves the
// streams), subscription.go (the cursor, whose one rule keeps every event
// exactly once), transport.go (HTTP/1 taken over, HTTP/2 flushed), then
// drain.go and frames.go.
package stream

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// A Hub delivers the events of the order log to every event stream of this
// process. It is fed by the process's one listener, in position order, and
// never blocks it.
//
// Every stream, whatever it follows and whatever carries it, lives in one
// of the hub's shards (one per CPU) from the moment it subscribes, before
// its handler reads the log, until it ends. Each shard has one writer
// goroutine that does all of its streams' work: it holds the batches that
// reach a stream while the stream replays, writes each batch to every live
// stream that wants it (encoded once, as the same bytes for all of them),
// sends heartbeats, and ends streams. So there is one rule for duplicates
// (a stream's cursor), one heartbeat, one policy for slow clients (a
// bounded queue and a write timeout) and one place that counts, whether the
// stream's connection was taken over from net/http (HTTP/1) or stays with
// it (HTTP/2).
type Hub struct {
	opts      Options
	log       *slog.Logger
	shards    []*shard
	next      atomic.Uint32 // the shard for the next stream, round robin
	open      atomic.Int64  // streams subscribed and not yet ended
	heartbeat payload
	metrics   *metrics
	reclaim   *reclaimer
	window    *window

	drainMu  sync.Mutex
	draining bool
	idle     chan struct{} // closed once draining and no stream is left

	clientsMu sync.Mutex
	clients   map[string]int // open streams by client, when MaxStreamsPerClient is set

	ownersMu sync.Mutex
	owners   map[string]int // open streams by owner (Subscription.OwnedBy)

	stalls stalls // the demo's silenced streams (demo.go)
}

// Options configure a Hub. The zero value of each field means its default.
type Options struct {
	// Heartbeat is how often an idle stream sends a heartbeat event, so
	// that proxies and the browser know it is alive; zero means 15 seconds.
	// Every stream starts with one, which tells the client the interval.
	Heartbeat time.Duration
	// Retry is the reconnection delay a stream tells its browser at the
	// start; zero means 2 seconds.
	Retry time.Duration
	// BusyRetry is the delay told to a browser that is turned away because
	// the process has MaxStreams open; zero means 30 seconds.
	BusyRetry time.Duration
	// WriteTimeout bounds every write that waits for a client; one that
	// cannot take a batch in that time is dropped, and reconnects and
	// replays. Zero means 10 seconds. Streams have no server-wide write
	// timeout: they are meant to last for hours.
	WriteTimeout time.Duration
	// Buffer is how many batches a stream may have queued, behind a write
	// that waits or behind its replay, before it is dropped; zero means 64.
	Buffer int
	// MaxStreams caps the streams open at once; zero means no cap.
	MaxStreams int
	// MaxStreamsPerClient caps the streams open at once from one client,
	// as ClientKey names it, so that no one client can take the streams
	// away from everyone else. A stream of several orders counts once.
	// Zero means no cap.
	MaxStreamsPerClient int
	// ClientKey names the client of a request for MaxStreamsPerClient: an
	// address, or a network for addresses that belong together. Nil counts
	// every request as its connection's peer address.
	ClientKey func(*http.Request) string
	// Window is how many of the latest events the hub keeps in memory, so
	// that a client that reconnects (every client of a process that
	// restarted does, at once) is replayed without a query; see
	// RecentAfter and RecentOrderAfter. Zero keeps none. The window starts
	// with PublishFrom.
	Window int
	// WindowAge is how long an event stays in the window; zero means for
	// as long as Window has room.
	WindowAge time.Duration
	// Logger receives the hub's logs; nil means slog.Default().
	Logger *slog.Logger
}

// NewHub returns a Hub with no streams. Its writers start with its first
// stream and end with its last.
func NewHub(opts Options) *Hub {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.Retry <= 0 {
		opts.Retry = 2 * time.Second
	}
	if opts.BusyRetry <= 0 {
		opts.BusyRetry = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	shards := max(runtime.GOMAXPROCS(0), 1)
	h := &Hub{
		opts:      opts,
		log:       opts.Logger,
		heartbeat: newPayload(appendHeartbeatFrame(nil, opts.Heartbeat)),
		metrics:   newMetrics(shards),
		reclaim:   newReclaimer(opts.Logger),
		window:    newWindow(opts.Window, opts.WindowAge),
		clients:   make(map[string]int),
		owners:    make(map[string]int),
	}
	if h.opts.ClientKey == nil {
		h.opts.ClientKey = peerAddr
	}
	h.shards = make([]*shard, shards)
	for i := range h.shards {
		h.shards[i] = &shard{hub: h, index: i, byToken: make(map[string][]*stream), wake: make(chan struct{}, 1)}
	}
	return h
}

// PublishFrom tells the hub that Publish will be handed every event after
// position head, in position order, from now on, as the listener does, and
// gives it recent, the last events of the log up to head, in position
// order (none at all is fine). The replay window starts with them: a web
// process that replaces another can replay its clients' resumes from
// memory at once. Without PublishFrom the window stays empty.
func (h *Hub) PublishFrom(head int64, recent []orders.Event) {
	h.window.start(head, recent, time.Now())
}

// RecentAfter returns the events after position p from the replay window,
// with the last position published, if the window holds them all: p is not
// older than the window, nor newer than what this process has published
// (a cursor that is, is for the log to judge). Call it in a Replay, after
// the stream has subscribed, so that nothing published meanwhile is missed.
func (h *Hub) RecentAfter(p int64) (events []orders.Event, head int64, ok bool) {
	events, head, ok = h.window.after(p)
	h.metrics.windowLookup(ok)
	return events, head, ok
}

// RecentHead reports whether the replay window holds every event after
// position p, as RecentAfter would, and the last position published,
// without copying them: for a handler to choose between the window and the
// log before it serves the stream.
func (h *Hub) RecentHead(p int64) (head int64, ok bool) {
	head, ok = h.window.covers(p)
	if !ok {
		h.metrics.windowLookup(false) // the log serves this one
	}
	return head, ok
}

// RecentOrder returns the latest event this process has published of the
// order with the given token, if the replay window holds one. It is then
// proof that the order exists, and its sequence number is the latest the
// window can replay after.
func (h *Hub) RecentOrder(token string) (orders.Event, bool) { return h.window.order(token) }

// RecentOrderAfter returns the events of an order after its sequence
// number seq from the replay window, if the window holds them all. Like
// RecentAfter, call it in a Replay.
func (h *Hub) RecentOrderAfter(token string, seq int) ([]orders.Event, bool) {
	events, ok := h.window.orderAfter(token, seq)
	h.metrics.windowLookup(ok)
	return events, ok
}

// Streams is how many streams are open, counting those still replaying.
func (h *Hub) Streams() int { return int(h.open.Load()) }

// Publish hands a batch of events, in position order, to every stream that
// follows any of them. It is the listener's handler and never blocks: the
// batch is queued for each shard's writer.
func (h *Hub) Publish(events []orders.Event) {
	if len(events) == 0 {
		return
	}
	p := newPublished(events)
	// Into the window before any shard has it: a stream that subscribes
	// too late to be held this batch reads it from the window.
	h.window.add(p, time.Now())
	for _, sh := range h.shards {
		sh.postIfBusy(job{op: opPublish, batch: p})
	}
	h.metrics.count(events)
}

// A delivery is one event with its two frames, each encoded at most once,
// by whichever stream needs it first, however many streams send it.
type delivery struct {
	event orders.Event

	orderOnce, staffOnce sync.Once
	order, staff         []byte
}

// orderFrame is the event's frame for streams of its order (id: its
// sequence number).
func (d *delivery) orderFrame() []byte {
	d.orderOnce.Do(func() { d.order = AppendOrderFrame(nil, d.event) })
	return d.order
}

// staffFrame is the event's frame for streams of all orders (id: its
// position).
func (d *delivery) staffFrame() []byte {
	d.staffOnce.Do(func() { d.staff = AppendStaffFrame(nil, d.event) })
	return d.staff
}

// published is one Publish's batch, whole for streams of every order and
// cut by order for the others. Nothing in it changes once it is made.
type published struct {
	batch []*delivery
	parts []orderPart // in the order of each order's first event
}

// An orderPart is the deliveries of one order in a batch.
type orderPart struct {
	token string
	batch []*delivery
}

func newPublished(events []orders.Event) *published {
	p := &published{batch: make([]*delivery, len(events))}
	for i, ev := range events {
		p.batch[i] = &delivery{event: ev}
	}
	if len(events) == 1 {
		p.parts = []orderPart{{events[0].Token, p.batch}}
		return p
	}
	index := make(map[string]int, len(events))
	for _, d := range p.batch {
		i, ok := index[d.event.Token]
		if !ok {
			i = len(p.parts)
			index[d.event.Token] = i
			p.parts = append(p.parts, orderPart{token: d.event.Token})
		}
		p.parts[i].batch = append(p.parts[i].batch, d)
	}
	return p
}

// A refusal is why a stream was turned away.
type refusal string

const (
	refusedBusy     refusal = "busy"     // the process has MaxStreams open
	refusedClient   refusal = "client"   // the client has MaxStreamsPerClient open
	refusedDraining refusal = "draining" // the process is shutting down
)

// subscribe places a new stream of client's in a shard, where it is held
// every batch published from now on, or says why it cannot.
func (h *Hub) subscribe(sub Subscription, client string) (*stream, refusal) {
	h.drainMu.Lock()
	draining := h.draining
	h.drainMu.Unlock()
	if draining {
		return nil, refusedDraining
	}
	if !h.admit(client) {
		return nil, refusedClient
	}
	if n := h.open.Add(1); h.opts.MaxStreams > 0 && n > int64(h.opts.MaxStreams) {
		h.open.Add(-1)
		h.release(client)
		return nil, refusedBusy
	}
	s := &stream{hub: h, cursor: newCursor(sub), opened: time.Now(), client: client, owner: sub.owner, hops: sub.hops, tag: sub.tag, tagged: sub.tag != ""}
	if s.owner != "" {
		h.ownersMu.Lock()
		h.owners[s.owner]++
		h.ownersMu.Unlock()
	}
	s.shard = h.shards[int(h.next.Add(1))%len(h.shards)]
	s.shard.post(job{op: opAdd, stream: s})
	return s, ""
}

// admit counts a new stream of client's, and reports false, counting
// nothing, if the client has as many open as it may.
func (h *Hub) admit(client string) bool {
	if h.opts.MaxStreamsPerClient <= 0 {
		return true
	}
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	if h.clients[client] >= h.opts.MaxStreamsPerClient {
		return false
	}
	h.clients[client]++
	return true
}

// release counts a stream of client's out.
func (h *Hub) release(client string) {
	if h.opts.MaxStreamsPerClient <= 0 {
		return
	}
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	if h.clients[client] <= 1 {
		delete(h.clients, client)
		return
	}
	h.clients[client]--
}

// peerAddr is the address of the request's peer, without its port.
func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ended counts a stream out.
func (h *Hub) ended(s *stream) {
	h.release(s.client)
	if s.owner != "" {
		h.ownersMu.Lock()
		if h.owners[s.owner] <= 1 {
			delete(h.owners, s.owner)
		} else {
			h.owners[s.owner]--
		}
		h.ownersMu.Unlock()
	}
	h.metrics.duration.Observe(time.Since(s.opened).Seconds())
	if h.open.Add(-1) == 0 {
		h.drainMu.Lock()
		if h.draining && h.idle != nil {
			close(h.idle)
			h.idle = nil
		}
		h.drainMu.Unlock()
	}
}

// Owners lists the owners (Subscription.OwnedBy) of the streams open now,
// each once, in no particular order.
func (h *Hub) Owners() []string {
	h.ownersMu.Lock()
	defer h.ownersMu.Unlock()
	return slices.Collect(maps.Keys(h.owners))
}

// EndOwner ends every open stream of owner, cleanly, as soon as each
// shard's writer gets to it: for a staff session that has ended, whose
// streams must not deliver another event. A client that reconnects is
// answered by its handler, which no longer lets it in. A stream that
// subscribes after EndOwner is not affected.
func (h *Hub) EndOwner(owner string) {
	if owner == "" {
		return
	}
	for _, sh := range h.shards {
		sh.post(job{op: opEndOwner, owner: owner})
	}
}

// Drain ends every stream, spread evenly over the given time, and turns
// new ones away, for a process that is about to exit. Each stream is told
// to reconnect after a random delay up to its retry delay plus over, so
// that its browser comes back to another process at a time of its own
// rather than with every other at once. Drain returns when every stream has
// ended, or when ctx is done.
func (h *Hub) Drain(ctx context.Context, over time.Duration) {
	h.drainMu.Lock()
	if !h.draining {
		h.draining = true
		if h.open.Load() > 0 {
			h.idle = make(chan struct{})
		}
	}
	idle := h.idle
	h.drainMu.Unlock()
	for _, sh := range h.shards {
		sh.post(job{op: opDrain, spread: over})
	}
	if idle == nil {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// Draining reports whether Drain has begun.
func (h *Hub) Draining() bool {
	h.drainMu.Lock()
	defer h.drainMu.Unlock()
	return h.draining
}

// drainRetry is the reconnection delay told to a stream ended by Drain.
func (h *Hub) drainRetry(over time.Duration) time.Duration {
	return h.opts.Retry/2 + rand.N(h.opts.Retry/2+over+1)
}
