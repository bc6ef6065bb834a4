package web

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordertracker/ordertracker/orders"
)

// A Hub fans events out to every stream of this process. It is fed by the
// process's one listener, in position order, and never blocks it: each
// subscription has a bounded buffer, and a subscription that falls behind is
// dropped (its browser reconnects and replays from the log) rather than
// allowed to delay anyone else.
//
// Events travel in batches, one per Publish: a worker transaction that moves
// 500 orders reaches a stream of all orders as one send of one shared slice,
// not 500, and each event is encoded once, however many streams send it.
type Hub struct {
	buffer int
	limit  int
	log    *slog.Logger

	mu      sync.RWMutex
	byOrder map[int64]map[*subscription]struct{}
	all     map[*subscription]struct{}
	open    int // subscriptions in byOrder and all

	published atomic.Uint64
	dropped   atomic.Uint64
	refused   atomic.Uint64

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
	// Buffer is how many batches a subscription may fall behind before it is
	// dropped; zero means 64.
	Buffer int
	// MaxStreams caps the subscriptions open at once; zero means no cap.
	MaxStreams int
	// Logger receives the hub's logs; nil means slog.Default().
	Logger *slog.Logger
}

// NewHub returns an empty Hub.
func NewHub(opts HubOptions) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Hub{
		buffer:  opts.Buffer,
		limit:   opts.MaxStreams,
		log:     opts.Logger,
		byOrder: make(map[int64]map[*subscription]struct{}),
		all:     make(map[*subscription]struct{}),
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

// A delivery is one event with its two frames, each encoded once however
// many streams send it.
type delivery struct {
	event orders.Event
	// order is the frame for streams of one order (id: the order's seq); nil
	// when no such stream was subscribed.
	order []byte
	// staff is the frame for streams of all orders (id: the position); nil
	// when no such stream was subscribed.
	staff []byte
	// noticed is when the listener heard of the event, for latency metrics.
	noticed time.Time
}

// A subscription is one stream's place in the hub.
type subscription struct {
	orderID int64 // 0: every order
	c       chan []*delivery
}

// Subscribe starts delivery of the events of one order, or of every order
// when orderID is 0. The channel is closed if the subscriber falls behind.
// It reports false, and subscribes nothing, when the hub is at MaxStreams.
func (h *Hub) Subscribe(orderID int64) (*subscription, bool) {
	s := &subscription{orderID: orderID, c: make(chan []*delivery, h.buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.limit > 0 && h.open >= h.limit {
		h.refused.Add(1)
		return nil, false
	}
	h.open++
	if orderID == 0 {
		h.all[s] = struct{}{}
		return s, true
	}
	set := h.byOrder[orderID]
	if set == nil {
		set = make(map[*subscription]struct{})
		h.byOrder[orderID] = set
	}
	set[s] = struct{}{}
	return s, true
}

// Unsubscribe ends delivery to s. It is safe to call after the hub dropped s.
func (h *Hub) Unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(s)
}

// remove takes s out of the hub and reports whether it was there; h.mu must
// be held for writing.
func (h *Hub) remove(s *subscription) bool {
	if s.orderID == 0 {
		if _, ok := h.all[s]; !ok {
			return false
		}
		delete(h.all, s)
		h.open--
		return true
	}
	set := h.byOrder[s.orderID]
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(h.byOrder, s.orderID)
	}
	h.open--
	return true
}

// Streams is how many subscriptions are open.
func (h *Hub) Streams() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.open
}

// Dropped counts the subscriptions dropped for falling behind.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Publish hands a batch of events, in position order, to their subscribers.
// It is the listener's handler and never blocks.
func (h *Hub) Publish(events []orders.Event) {
	var slow []*subscription
	h.mu.RLock()
	all := make([]*delivery, len(events))
	byOrder := make(map[int64][]*delivery)
	for i, ev := range events {
		d := &delivery{event: ev, noticed: ev.Noticed}
		if _, ok := h.byOrder[ev.OrderID]; ok {
			d.order = encodeOrderEvent(nil, ev)
			byOrder[ev.OrderID] = append(byOrder[ev.OrderID], d)
		}
		if len(h.all) > 0 {
			d.staff = encodeStaffEvent(nil, ev)
		}
		all[i] = d
	}
	for id, batch := range byOrder {
		for s := range h.byOrder[id] {
			if !offer(s, batch) {
				slow = append(slow, s)
			}
		}
	}
	for s := range h.all {
		if !offer(s, all) {
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	h.published.Add(uint64(len(events)))
	h.count(events)
	if len(slow) == 0 {
		return
	}
	h.mu.Lock()
	for _, s := range slow {
		// Closing under the write lock, after removal, means no Publish
		// can be sending on the channel.
		if h.remove(s) {
			close(s.c)
			h.dropped.Add(1)
		}
	}
	h.mu.Unlock()
	h.log.Warn("dropped streams that fell behind", "count", len(slow))
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
