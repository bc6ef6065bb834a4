package web

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	log    *slog.Logger

	mu      sync.RWMutex
	byOrder map[int64]map[*subscription]struct{}
	all     map[*subscription]struct{}

	published atomic.Uint64
	dropped   atomic.Uint64
}

// NewHub returns a Hub whose subscriptions buffer up to buffer batches; zero
// means 64.
func NewHub(buffer int, log *slog.Logger) *Hub {
	if buffer <= 0 {
		buffer = 64
	}
	if log == nil {
		log = slog.Default()
	}
	return &Hub{
		buffer:  buffer,
		log:     log,
		byOrder: make(map[int64]map[*subscription]struct{}),
		all:     make(map[*subscription]struct{}),
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
	// published is when the hub got the event, for latency metrics.
	published time.Time
}

// A subscription is one stream's place in the hub.
type subscription struct {
	orderID int64 // 0: every order
	c       chan []*delivery
}

// Subscribe starts delivery of the events of one order, or of every order
// when orderID is 0. The channel is closed if the subscriber falls behind.
func (h *Hub) Subscribe(orderID int64) *subscription {
	s := &subscription{orderID: orderID, c: make(chan []*delivery, h.buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if orderID == 0 {
		h.all[s] = struct{}{}
		return s
	}
	set := h.byOrder[orderID]
	if set == nil {
		set = make(map[*subscription]struct{})
		h.byOrder[orderID] = set
	}
	set[s] = struct{}{}
	return s
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
	return true
}

// Streams is how many subscriptions are open.
func (h *Hub) Streams() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := len(h.all)
	for _, set := range h.byOrder {
		n += len(set)
	}
	return n
}

// Dropped counts the subscriptions dropped for falling behind.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Publish hands a batch of events, in position order, to their subscribers.
// It is the listener's handler and never blocks.
func (h *Hub) Publish(events []orders.Event) {
	now := time.Now()
	var slow []*subscription
	h.mu.RLock()
	all := make([]*delivery, len(events))
	byOrder := make(map[int64][]*delivery)
	for i, ev := range events {
		d := &delivery{event: ev, published: now}
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
