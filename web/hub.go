package web

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordertracker/ordertracker/orders"
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
	d.orderOnce.Do(func() { d.order = encodeOrderEvent(nil, d.event) })
	return d.order
}

// staffFrame is the frame of the event for streams of all orders (id: the
// position).
func (d *delivery) staffFrame() []byte {
	d.staffOnce.Do(func() { d.staff = encodeStaffEvent(nil, d.event) })
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
	c := &sseConn{conn: conn, srv: srv, orderID: sub.orderID, last: last, heartbeat: cfg.Heartbeat, writeTimeout: cfg.WriteTimeout}
	if !h.watch(srv) {
		h.Unsubscribe(sub)
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
}

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

// A shard is a part of the hub's streams with its own lock and, while it
// has attached streams, its own writer goroutine.
type shard struct {
	hub *Hub

	mu      sync.Mutex
	byOrder map[int64]map[*subscription]struct{} // subscriptions of one order
	all     map[*subscription]struct{}           // subscriptions of every order
	nconns  int                                  // attached streams, and those on their way
	queue   []item
	running bool // the writer goroutine runs
	wake    chan struct{}

	// Owned by the writer goroutine.
	conns  []*sseConn           // every attached stream
	staff  []*sseConn           // streams of every order
	orders map[int64][]*sseConn // streams of one order
	ended  []*sseConn           // to take out once the current item is done
	beat   time.Duration        // the shortest heartbeat interval of the streams
	scrap  []byte
}

// An item is one piece of work for a shard's writer.
type item struct {
	published *published    // write a published batch
	attach    *sseConn      // take on a stream...
	backlog   [][]*delivery // ...with what reached it while it replayed
	gone      *sseConn      // the client left
	slow      *sseConn      // a write did not finish in time
	shutdown  *http.Server  // end the streams of a server that shuts down
}

// remove takes s out of the shard and reports whether it was there; sh.mu
// must be held.
func (sh *shard) remove(s *subscription) bool {
	if s.orderID == 0 {
		if _, ok := sh.all[s]; !ok {
			return false
		}
		delete(sh.all, s)
		return true
	}
	set := sh.byOrder[s.orderID]
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(sh.byOrder, s.orderID)
	}
	return true
}

// post queues work for the writer and starts it if it is not running;
// sh.mu must be held.
func (sh *shard) post(it item) {
	sh.queue = append(sh.queue, it)
	if !sh.running {
		sh.running = true
		go sh.run()
		return
	}
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// postLocked is post for callers that do not hold sh.mu.
func (sh *shard) postLocked(it item) {
	sh.mu.Lock()
	sh.post(it)
	sh.mu.Unlock()
}

// run is the shard's writer. It ends when the shard has no streams and no
// work left.
func (sh *shard) run() {
	var timer *time.Timer
	var work []item
	for {
		sh.mu.Lock()
		work, sh.queue = sh.queue, work[:0]
		if len(work) == 0 && sh.nconns == 0 {
			sh.beat = 0 // the next writer starts afresh, once this one has let go
			sh.running = false
			sh.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		sh.mu.Unlock()
		for i := range work {
			sh.handle(&work[i])
			work[i] = item{} // let the batch go
		}
		if len(work) > 0 {
			continue
		}
		if sh.beat > 0 && timer == nil {
			timer = time.NewTimer(sh.tick())
		}
		var tick <-chan time.Time
		if timer != nil {
			tick = timer.C
		}
		select {
		case <-sh.wake:
		case now := <-tick:
			sh.heartbeats(now)
			timer.Reset(sh.tick())
		}
	}
}

// tick is how often the writer looks for streams due a heartbeat: often
// enough that none is more than an eighth of its interval late.
func (sh *shard) tick() time.Duration { return max(sh.beat/8, time.Millisecond) }

func (sh *shard) handle(it *item) {
	switch {
	case it.published != nil:
		sh.deliver(it.published)
	case it.attach != nil:
		sh.add(it.attach, it.backlog)
	case it.gone != nil:
		sh.end(it.gone, false)
	case it.slow != nil:
		sh.end(it.slow, true)
	case it.shutdown != nil:
		for _, c := range sh.conns {
			if c.srv == it.shutdown {
				// The last chunk, so the response ends cleanly.
				sh.write(c, endChunk, 0, time.Time{})
				sh.end(c, false)
			}
		}
	}
	sh.reap()
}

// add takes on an attached stream and sends it what reached it during its
// replay.
func (sh *shard) add(c *sseConn, backlog [][]*delivery) {
	c.all = len(sh.conns)
	sh.conns = append(sh.conns, c)
	if c.orderID == 0 {
		c.kind = len(sh.staff)
		sh.staff = append(sh.staff, c)
	} else {
		list := sh.orders[c.orderID]
		c.kind = len(list)
		sh.orders[c.orderID] = append(list, c)
	}
	if sh.beat == 0 || c.heartbeat < sh.beat {
		sh.beat = c.heartbeat
	}
	c.nextBeat = time.Now().Add(c.heartbeat)
	sent := 0
	for _, b := range backlog {
		if !c.ended {
			sent += sh.deliverOwn(c, b)
		}
	}
	if sent > 0 {
		sh.hub.sent.Add(float64(sent))
	}
	sh.hub.srvMu.Lock()
	shut := sh.hub.servers[c.srv]
	sh.hub.srvMu.Unlock()
	if shut {
		// Its server began to shut down after the stream was handed over
		// and before it got here, so the shutdown did not see it.
		sh.write(c, endChunk, 0, time.Time{})
		sh.end(c, false)
	}
	go c.watch(sh)
}

// deliver writes a batch to every stream of the shard that wants some of
// it. Streams that want the same events get the same bytes.
func (sh *shard) deliver(p *published) {
	sent := 0
	if len(sh.staff) > 0 {
		batch := p.batch
		first, last := batch[0].event.Position, batch[len(batch)-1].event.Position
		var shared []byte // every event, for every stream that has none of them
		for _, c := range sh.staff {
			if c.ended || c.last >= last {
				continue
			}
			if c.last >= first {
				sent += sh.deliverOwn(c, batch) // just attached: it has some already
				continue
			}
			if shared == nil {
				shared = staffChunk(batch)
			}
			c.last = last
			if sh.write(c, shared, len(batch), batch[0].noticed) {
				sent += len(batch)
			}
		}
	}
	if len(sh.orders) > 0 {
		for _, part := range p.parts {
			var shared []byte
			var frames int
			var final bool
			for _, c := range sh.orders[part.orderID] {
				if c.ended {
					continue
				}
				if c.last >= int64(part.batch[0].event.Seq) {
					sent += sh.deliverOwn(c, part.batch)
					continue
				}
				if shared == nil {
					shared, frames, final = orderChunk(part.batch)
				}
				c.last = int64(part.batch[len(part.batch)-1].event.Seq)
				if sh.write(c, shared, frames, part.batch[0].noticed) {
					sent += frames
				}
				if final {
					c.drain = true
					sh.end(c, false)
				}
			}
		}
	}
	if sent > 0 {
		sh.hub.sent.Add(float64(sent))
	}
}

// deliverOwn writes to one stream the events of batch it has not had yet,
// and reports how many.
func (sh *shard) deliverOwn(c *sseConn, batch []*delivery) int {
	if c.orderID == 0 {
		var fresh []*delivery
		for _, d := range batch {
			if d.event.Position > c.last {
				fresh = append(fresh, d)
			}
		}
		if len(fresh) == 0 {
			return 0
		}
		c.last = fresh[len(fresh)-1].event.Position
		if sh.write(c, staffChunk(fresh), len(fresh), fresh[0].noticed) {
			return len(fresh)
		}
		return 0
	}
	var fresh []*delivery
	for _, d := range batch {
		if d.event.OrderID == c.orderID && int64(d.event.Seq) > c.last {
			fresh = append(fresh, d)
		}
	}
	if len(fresh) == 0 {
		return 0
	}
	chunk, frames, final := orderChunk(fresh)
	c.last = int64(fresh[len(fresh)-1].event.Seq)
	ok := sh.write(c, chunk, frames, fresh[0].noticed)
	if final {
		c.drain = true
		sh.end(c, false)
	}
	if ok {
		return frames
	}
	return 0
}

// heartbeats sends a comment to every stream that has been quiet for its
// heartbeat interval. A client that has gone is found here too: the write
// fails, or the watcher hears it.
func (sh *shard) heartbeats(now time.Time) {
	for _, c := range sh.conns {
		if !c.ended && !now.Before(c.nextBeat) {
			sh.write(c, heartbeatChunk, 0, time.Time{})
		}
	}
	sh.reap()
}

// write sends chunk (frames events, heard of at noticed) to c without
// waiting: what the socket does not take at once is left to a flusher
// goroutine, and a stream whose flusher is still busy with earlier batches
// gets this one queued behind them, up to the hub's buffer. It reports
// false if c failed or fell behind.
func (sh *shard) write(c *sseConn, chunk []byte, frames int, noticed time.Time) bool {
	if c.ended {
		return false
	}
	c.nextBeat = time.Now().Add(c.heartbeat)
	c.mu.Lock()
	if c.flushing {
		if c.queued >= sh.hub.buffer {
			c.mu.Unlock()
			sh.end(c, true)
			return false
		}
		c.pending = append(c.pending, chunk)
		c.queued++
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	// A socket with room takes the write at once; one without is a slow
	// client, and waiting for it here would hold up every other stream.
	_ = c.conn.SetWriteDeadline(time.Now().Add(quickWrite))
	n, err := c.conn.Write(chunk)
	if err == nil {
		if !noticed.IsZero() {
			sh.hub.latency.Observe(time.Since(noticed).Seconds())
		}
		return true
	}
	if !isTimeout(err) {
		sh.end(c, false) // the client has gone
		return false
	}
	c.mu.Lock()
	c.flushing = true
	c.pending = append(c.pending[:0], chunk[n:])
	c.queued = 0
	c.noticed = noticed
	c.mu.Unlock()
	go c.flush(sh)
	return true
}

// quickWrite is how long the writer waits for a socket to take a write
// before it hands the rest to a flusher: long enough for the kernel to take
// what fits, short enough that a slow client costs the others little.
const quickWrite = time.Millisecond

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// end takes c out of the shard once the current item is done, and closes
// its connection; slow marks a stream dropped for falling behind.
func (sh *shard) end(c *sseConn, slow bool) {
	if c.ended {
		return
	}
	c.ended = true
	if slow {
		sh.hub.dropped.Add(1)
		sh.hub.log.Warn("dropped a stream that fell behind")
	}
	sh.ended = append(sh.ended, c)
}

// reap takes ended streams out of the shard's lists and closes them. A
// stream with a flusher still writing its terminal event is closed by the
// flusher once the event is out; any other is closed now, even mid-write:
// its client resumes from the last event it got.
func (sh *shard) reap() {
	if len(sh.ended) == 0 {
		return
	}
	for _, c := range sh.ended {
		sh.conns = unlink(sh.conns, c.all, func(m *sseConn, i int) { m.all = i })
		if c.orderID == 0 {
			sh.staff = unlink(sh.staff, c.kind, func(m *sseConn, i int) { m.kind = i })
		} else {
			list := unlink(sh.orders[c.orderID], c.kind, func(m *sseConn, i int) { m.kind = i })
			if len(list) == 0 {
				delete(sh.orders, c.orderID)
			} else {
				sh.orders[c.orderID] = list
			}
		}
		c.mu.Lock()
		c.closed = true
		wait := c.flushing && c.drain
		c.mu.Unlock()
		if !wait {
			c.conn.Close()
		}
		sh.hub.open.Add(-1)
	}
	sh.mu.Lock()
	sh.nconns -= len(sh.ended)
	sh.mu.Unlock()
	clear(sh.ended)
	sh.ended = sh.ended[:0]
}

// unlink removes list[i], moving the last element into its place.
func unlink(list []*sseConn, i int, moved func(*sseConn, int)) []*sseConn {
	last := len(list) - 1
	if i != last {
		list[i] = list[last]
		moved(list[i], i)
	}
	list[last] = nil
	return list[:last]
}

// An sseConn is an attached stream: a hijacked HTTP/1.1 connection whose
// response is chunked and whose headers are out.
type sseConn struct {
	conn         net.Conn
	srv          *http.Server
	orderID      int64 // 0: every order
	heartbeat    time.Duration
	writeTimeout time.Duration

	// Owned by the shard's writer.
	last     int64 // id of the last event sent: the order's seq, or the position
	nextBeat time.Time
	ended    bool
	drain    bool // it ended with its order's terminal event, which must get out
	all      int  // index in shard.conns
	kind     int  // index in shard.staff or shard.orders[orderID]

	mu       sync.Mutex
	flushing bool     // a flusher owns the writes
	pending  [][]byte // what it has yet to write
	queued   int      // batches queued behind the one it writes
	noticed  time.Time
	closed   bool // the writer is done with it; the flusher closes it

	rbuf [16]byte
}

// watch reads the connection, on which a client sends nothing after its
// request, until it ends: that is how a client that goes is noticed at
// once, without waiting for a write to fail.
func (c *sseConn) watch(sh *shard) {
	for {
		if _, err := c.conn.Read(c.rbuf[:]); err != nil {
			sh.postLocked(item{gone: c})
			return
		}
	}
}

// flush writes what the socket would not take at once, waiting up to the
// write timeout for each write, until nothing is pending.
func (c *sseConn) flush(sh *shard) {
	for {
		c.mu.Lock()
		bufs := net.Buffers(c.pending)
		c.pending, c.queued = nil, 0
		noticed := c.noticed
		c.noticed = time.Time{}
		if len(bufs) == 0 {
			c.flushing = false
			closed := c.closed
			c.mu.Unlock()
			if closed {
				c.conn.Close()
			}
			return
		}
		c.mu.Unlock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		if _, err := bufs.WriteTo(c.conn); err != nil {
			c.conn.Close()
			if isTimeout(err) {
				sh.postLocked(item{slow: c})
			} else {
				sh.postLocked(item{gone: c})
			}
			c.mu.Lock()
			c.pending = nil
			c.mu.Unlock()
			return // flushing stays set: nothing more is written
		}
		if !noticed.IsZero() {
			sh.hub.latency.Observe(time.Since(noticed).Seconds())
		}
	}
}

// Chunks of the chunked transfer coding that the attached streams' responses
// use: each write is one chunk.
var (
	heartbeatChunk = chunk(appendComment(nil, "heartbeat"))
	endChunk       = []byte("0\r\n\r\n")
)

// chunk wraps frames as one chunk.
func chunk(frames ...[]byte) []byte {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	dst := make([]byte, 0, n+16)
	dst = strconv.AppendInt(dst, int64(n), 16)
	dst = append(dst, "\r\n"...)
	for _, f := range frames {
		dst = append(dst, f...)
	}
	return append(dst, "\r\n"...)
}

// staffChunk is the chunk of the staff frames of batch.
func staffChunk(batch []*delivery) []byte {
	frames := make([][]byte, len(batch))
	for i, d := range batch {
		frames[i] = d.staffFrame()
	}
	return chunk(frames...)
}

// orderChunk is the chunk of the order frames of part, all of one order, up
// to and with its terminal event, after which it ends the response.
func orderChunk(part []*delivery) (out []byte, frames int, final bool) {
	list := make([][]byte, 0, len(part))
	for _, d := range part {
		list = append(list, d.orderFrame())
		if d.event.Status.Terminal() {
			final = true
			break
		}
	}
	out = chunk(list...)
	if final {
		out = append(out, endChunk...)
	}
	return out, len(list), final
}

// orderEventJSON is the data of an order_update event on a customer's
// stream. It carries nothing about other orders.
type orderEventJSON struct {
	Token  string        `json:"token"`
	Seq    int           `json:"seq"`
	Status orders.Status `json:"status"`
	Label  string        `json:"label"`
	At     time.Time     `json:"at"`
	Actor  orders.Actor  `json:"actor"`
	Final  bool          `json:"final"`
}

// staffEventJSON is the data of an order_update event on the staff stream:
// the order's event plus what the board needs to show an order it has not
// seen before.
type staffEventJSON struct {
	orderEventJSON
	Position   int64         `json:"position"`
	Name       string        `json:"name"`
	Items      []orders.Item `json:"items"`
	TotalCents int           `json:"total_cents"`
}

func newOrderEventJSON(ev orders.Event) orderEventJSON {
	return orderEventJSON{
		Token:  ev.Token,
		Seq:    ev.Seq,
		Status: ev.Status,
		Label:  ev.Status.Label(),
		At:     ev.At.UTC(),
		Actor:  ev.Actor,
		Final:  ev.Status.Terminal(),
	}
}

// encodeOrderEvent appends the frame of ev for a stream of its order.
func encodeOrderEvent(dst []byte, ev orders.Event) []byte {
	return encodeFrame(dst, int64(ev.Seq), newOrderEventJSON(ev))
}

// encodeStaffEvent appends the frame of ev for a stream of all orders.
func encodeStaffEvent(dst []byte, ev orders.Event) []byte {
	return encodeFrame(dst, ev.Position, staffEventJSON{
		orderEventJSON: newOrderEventJSON(ev),
		Position:       ev.Position,
		Name:           ev.CustomerName,
		Items:          ev.Items,
		TotalCents:     ev.TotalCents,
	})
}

// eventName is the type of every event the streams send.
const eventName = "order_update"

func encodeFrame(dst []byte, id int64, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic("encode order event: " + err.Error()) // plain structs of strings, numbers and times cannot fail
	}
	frame, err := appendEvent(dst, strconv.FormatInt(id, 10), eventName, data)
	if err != nil {
		panic("encode order event: " + err.Error()) // a number and a constant are never refused
	}
	return frame
}
