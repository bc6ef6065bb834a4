package web

import (
	"github.com/ordertracker/ordertracker/internal/stream"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordertracker/ordertracker/orders"
	"github.com/prometheus/client_golang/prometheus"
)

// A Hub fans events out to every stream of this process. It is fed by the
// process's one listener, in position order, and never blocks it: a stream
// that falls behind is dropped (its browser reconnects and replays from the
// log) rather than allowed to delay anyone else.
//
// Events travel in batches, one per Publish: a worker transaction that moves
// 500 orders reaches a stream of all orders as one write of shared bytes,
// not 500, and each event is encoded once, however many streams send it.
//
// A stream lives in the hub in one of two forms. While it replays the log,
// and for the whole of its life where its connection cannot be taken over
// (HTTP/2, or a stream of several orders), it is a subscription: a bounded
// channel read by the stream's own handler goroutine. Once an HTTP/1.1
// stream is live, its handler hijacks the connection and attaches it here,
// and the stream becomes a small struct: no goroutine of net/http's, no
// buffers, no ticker. The hub is cut into shards, one per CPU, each with its
// own lock and its own writer goroutine that writes every batch to its
// streams and sends their heartbeats, so no lock is shared by all streams.
type Hub struct {
	buffer int
	limit  int
	log    *slog.Logger
	shards []*shard
	next   atomic.Uint32 // the shard for the next subscription, round robin

	open      atomic.Int64 // streams subscribed or attached
	published atomic.Uint64
	dropped   atomic.Uint64
	refused   atomic.Uint64

	reclaim *reclaimer // returns the garbage of handing streams over

	srvMu   sync.Mutex
	servers map[*http.Server]bool // servers whose shutdown ends their streams; true once shut

	// sent counts the events written to streams; latency observes, once
	// per batch per stream, the time from the listener hearing of an event
	// to a stream writing it.
	sent    prometheus.Counter
	latency prometheus.Histogram
	// events counts the events published, by who caused them: every
	// process's hub sees every event, so this is the rate of the whole
	// system, the worker's moves included.
	events *prometheus.CounterVec
}

// HubOptions configure a Hub.
type HubOptions struct {
	// Buffer is how many batches a stream may fall behind before it is
	// dropped; zero means 64.
	Buffer int
	// MaxStreams caps the streams open at once; zero means no cap.
	MaxStreams int
	// Logger receives the hub's logs; nil means slog.Default().
	Logger *slog.Logger
}

// NewHub returns an empty Hub. It starts no goroutine until a stream
// attaches, and its goroutines end when its last stream does.
func NewHub(opts HubOptions) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Hub{
		buffer:  opts.Buffer,
		limit:   opts.MaxStreams,
		log:     opts.Logger,
		servers: make(map[*http.Server]bool),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordertracker_stream_events_sent_total",
			Help: "Events written to SSE streams, live and replayed.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordertracker_stream_send_latency_seconds",
			Help:    "Time from the listener hearing of an event to a stream writing it, observed once per batch per stream.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordertracker_events_total",
			Help: "Order events heard from the database, by who caused them.",
		}, []string{"actor"}),
	}
	h.reclaim = newReclaimer(h.log)
	h.shards = make([]*shard, max(runtime.GOMAXPROCS(0), 1))
	for i := range h.shards {
		h.shards[i] = &shard{
			hub:     h,
			byOrder: make(map[int64]map[*subscription]struct{}),
			all:     make(map[*subscription]struct{}),
			wake:    make(chan struct{}, 1),
			orders:  make(map[int64][]*sseConn),
		}
	}
	return h
}

// Collectors are the hub's metrics, for a Prometheus registry.
func (h *Hub) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		h.sent,
		h.latency,
		h.events,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordertracker_streams_open",
			Help: "SSE streams open in this process.",
		}, func() float64 { return float64(h.Streams()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordertracker_streams_dropped_slow_total",
			Help: "Streams dropped because they fell behind.",
		}, func() float64 { return float64(h.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordertracker_streams_refused_total",
			Help: "Streams turned away (asked to come back later) because the process was at MAX_STREAMS.",
		}, func() float64 { return float64(h.refused.Load()) }),
	}
}

// A delivery is one event with its two frames, each encoded at most once,
// by whichever stream needs it first, however many streams send it.
type delivery struct {
	event orders.Event
	// noticed is when the listener heard of the event, for latency metrics.
	noticed time.Time

	orderOnce, staffOnce sync.Once
	order, staff         []byte
}

// orderFrame is the frame of the event for streams of its order (id: the
// order's seq).
func (d *delivery) orderFrame() []byte {
	d.orderOnce.Do(func() { d.order = stream.AppendOrderFrame(nil, d.event) })
	return d.order
}

// staffFrame is the frame of the event for streams of all orders (id: the
// position).
func (d *delivery) staffFrame() []byte {
	d.staffOnce.Do(func() { d.staff = stream.AppendStaffFrame(nil, d.event) })
	return d.staff
}

// A subscription is a stream's place in the hub while a goroutine of its
// own reads it.
type subscription struct {
	orderID int64 // 0: every order
	c       chan []*delivery
	shard   *shard
}

// Subscribe starts delivery of the events of one order, or of every order
// when orderID is 0. The channel is closed if the subscriber falls behind.
// It reports false, and subscribes nothing, when the hub is at MaxStreams.
func (h *Hub) Subscribe(orderID int64) (*subscription, bool) {
	if n := h.open.Add(1); h.limit > 0 && n > int64(h.limit) {
		h.open.Add(-1)
		h.refused.Add(1)
		return nil, false
	}
	sh := h.shards[int(h.next.Add(1))%len(h.shards)]
	s := &subscription{orderID: orderID, c: make(chan []*delivery, h.buffer), shard: sh}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if orderID == 0 {
		sh.all[s] = struct{}{}
		return s, true
	}
	set := sh.byOrder[orderID]
	if set == nil {
		set = make(map[*subscription]struct{})
		sh.byOrder[orderID] = set
	}
	set[s] = struct{}{}
	return s, true
}

// Unsubscribe ends delivery to s. It is safe to call after the hub dropped s.
func (h *Hub) Unsubscribe(s *subscription) {
	if s == nil || s.shard == nil {
		return
	}
	s.shard.mu.Lock()
	removed := s.shard.remove(s)
	s.shard.mu.Unlock()
	if removed {
		h.open.Add(-1)
	}
}

// Streams is how many streams are open.
func (h *Hub) Streams() int { return int(h.open.Load()) }

// Dropped counts the streams dropped for falling behind.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Publish hands a batch of events, in position order, to their subscribers.
// It is the listener's handler and never blocks: subscriptions are offered
// the batch on their channels, and each shard with attached streams gets it
// queued for its writer.
func (h *Hub) Publish(events []orders.Event) {
	if len(events) == 0 {
		return
	}
	p := newPublished(events)
	for _, sh := range h.shards {
		var slow []*subscription
		sh.mu.Lock()
		if len(sh.byOrder) > 0 {
			for _, part := range p.parts {
				for s := range sh.byOrder[part.orderID] {
					if !offer(s, part.batch) {
						slow = append(slow, s)
					}
				}
			}
		}
		for s := range sh.all {
			if !offer(s, p.batch) {
				slow = append(slow, s)
			}
		}
		for _, s := range slow {
			// Closing under the lock, after removal, means no Publish
			// can be sending on the channel.
			if sh.remove(s) {
				close(s.c)
				h.open.Add(-1)
				h.dropped.Add(1)
			}
		}
		if sh.nconns > 0 {
			sh.post(item{published: p})
		}
		sh.mu.Unlock()
		if len(slow) > 0 {
			h.log.Warn("dropped streams that fell behind", "count", len(slow))
		}
	}
	h.published.Add(uint64(len(events)))
	h.count(events)
}

// published is one Publish's batch, whole for streams of every order and
// cut by order for the others. Nothing in it changes once it is made.
type published struct {
	batch []*delivery
	parts []orderPart // in the order of each order's first event
}

// An orderPart is the deliveries of one order in a batch.
type orderPart struct {
	orderID int64
	batch   []*delivery
}

func newPublished(events []orders.Event) *published {
	p := &published{batch: make([]*delivery, len(events))}
	for i, ev := range events {
		p.batch[i] = &delivery{event: ev, noticed: ev.Noticed}
	}
	if len(events) == 1 {
		p.parts = []orderPart{{events[0].OrderID, p.batch}}
		return p
	}
	index := make(map[int64]int, len(events))
	for _, d := range p.batch {
		i, ok := index[d.event.OrderID]
		if !ok {
			i = len(p.parts)
			index[d.event.OrderID] = i
			p.parts = append(p.parts, orderPart{orderID: d.event.OrderID})
		}
		p.parts[i].batch = append(p.parts[i].batch, d)
	}
	return p
}

// count adds events to the per-actor counter, one Add per actor per batch.
func (h *Hub) count(events []orders.Event) {
	var by [3]int
	for _, ev := range events {
		switch ev.Actor {
		case orders.ByCustomer:
			by[0]++
		case orders.ByWorker:
			by[1]++
		case orders.ByStaff:
			by[2]++
		}
	}
	for i, actor := range []orders.Actor{orders.ByCustomer, orders.ByWorker, orders.ByStaff} {
		if by[i] > 0 {
			h.events.WithLabelValues(string(actor)).Add(float64(by[i]))
		}
	}
}

// offer sends batch to s unless s's buffer is full.
func offer(s *subscription, batch []*delivery) bool {
	select {
	case s.c <- batch:
		return true
	default:
		return false
	}
}

// attach hands a live stream over to its shard's writer: conn is the
// hijacked connection, whose response headers (chunked) and replay are
// already out, and last is the id of the last event sent. The events that
// reached sub while it replayed are written first; from then on the writer
// writes every batch. The stream ends when the client goes, falls behind,
// gets its order's terminal event, or srv shuts down.
func (h *Hub) attach(sub *subscription, conn net.Conn, srv *http.Server, last int64, cfg StreamConfig) {
	c := &sseConn{conn: conn, raw: rawConn(conn), srv: srv, orderID: sub.orderID, last: last, heartbeat: cfg.Heartbeat, writeTimeout: cfg.WriteTimeout}
	if !h.watch(srv) {
		// The server is shutting down: end the response cleanly.
		h.Unsubscribe(sub)
		_ = c.conn.SetWriteDeadline(time.Now().Add(quickWrite))
		_, _ = c.conn.Write(endChunk)
		c.conn.Close()
		return
	}
	sh := sub.shard
	sh.mu.Lock()
	var backlog [][]*delivery
	closed := false
drain:
	for {
		select {
		case b, ok := <-sub.c:
			if !ok {
				closed = true
				break drain
			}
			backlog = append(backlog, b)
		default:
			break drain
		}
	}
	if closed {
		// Dropped for falling behind while it replayed, and already
		// counted out; the client will replay again.
		sh.mu.Unlock()
		conn.Close()
		return
	}
	sh.remove(sub)
	sh.nconns++
	sh.post(item{attach: c, backlog: backlog})
	sh.mu.Unlock()
	h.reclaim.added()
}

// EndStreamsWith makes srv's Shutdown end the streams attached from it.
// Shutdown neither closes nor waits for hijacked connections; it runs the
// functions registered with RegisterOnShutdown, but only those registered
// before it began. A server's owner calls this before serving, so that a
// stream handed over just as the shutdown begins is ended too.
func (h *Hub) EndStreamsWith(srv *http.Server) { h.watch(srv) }

// watch makes sure that srv's shutdown ends the streams attached from it,
// and reports false if srv is already shutting down.
func (h *Hub) watch(srv *http.Server) bool {
	h.srvMu.Lock()
	defer h.srvMu.Unlock()
	shut, seen := h.servers[srv]
	if !seen {
		h.servers[srv] = false
		// Shutdown neither closes nor waits for hijacked connections; it
		// calls these functions for that.
		srv.RegisterOnShutdown(func() {
			h.srvMu.Lock()
			h.servers[srv] = true
			h.srvMu.Unlock()
			for _, sh := range h.shards {
				sh.mu.Lock()
				if sh.nconns > 0 {
					sh.post(item{shutdown: srv})
				}
				sh.mu.Unlock()
			}
		})
	}
	return !shut
}
