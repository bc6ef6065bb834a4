package stream

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// A window keeps the most recent events the hub has published, so that a
// client that reconnects is replayed from memory rather than from the log.
// Every client of a process that restarts reconnects at once, each a few
// events behind: without the window each of them costs a query, and the
// storm lands on the database.
//
// The window holds every event published after its start, in position
// order, up to a number of events and an age; the oldest go first. So it
// knows all that happened after the position just before its oldest event
// (from): a cursor at or after from is served from memory, and an order
// with an event in the window has every later event there too.
type window struct {
	max int
	age time.Duration

	mu      sync.RWMutex
	started bool  // the start is known: every event after from is published here
	from    int64 // the window holds every published event after this position
	last    int64 // the last position published; from when none is held
	events  []held
	byToken map[string][]*orders.Event
}

// A held event is one in the window, with when it arrived. It is kept as
// the hub published it, with the frames encoded for its streams, which a
// replay from the window writes again rather than encoding them anew.
type held struct {
	d  *delivery
	ev *orders.Event // &d.event
	at time.Time
}

func newWindow(max int, age time.Duration) *window {
	return &window{max: max, age: age, byToken: make(map[string][]*orders.Event)}
}

// start says that every event after position head will be published, in
// order, and that recent are the events of the log just before, up to head:
// every one after the position before the first of them. From now on, the
// window covers cursors from there.
func (w *window) start(head int64, recent []orders.Event, now time.Time) {
	if w.max <= 0 {
		return
	}
	var p *published
	if len(recent) > 0 {
		p = newPublished(recent)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started, w.from, w.last = true, head, head
	if p != nil {
		w.from, w.last = recent[0].Position-1, recent[0].Position-1
		w.addLocked(p, now)
	}
}

// add takes a batch as it is published, and lets go of what is now too old
// or too many. It keeps the batch's own events, which nothing changes once
// published.
func (w *window) add(p *published, now time.Time) {
	if w.max <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		w.addLocked(p, now)
	}
}

func (w *window) addLocked(p *published, now time.Time) {
	for _, d := range p.batch {
		ev := &d.event
		if ev.Position <= w.last {
			continue // the listener hands each event on once; this guards the rule the window lives by
		}
		w.events = append(w.events, held{d: d, ev: ev, at: now})
		w.byToken[ev.Token] = append(w.byToken[ev.Token], ev)
		w.last = ev.Position
	}
	n := 0
	for n < len(w.events) && (len(w.events)-n > w.max || w.age > 0 && now.Sub(w.events[n].at) > w.age) {
		ev := w.events[n].ev
		w.from = ev.Position
		if rest := w.byToken[ev.Token][1:]; len(rest) > 0 {
			w.byToken[ev.Token] = rest
		} else {
			delete(w.byToken, ev.Token)
		}
		w.events[n] = held{}
		n++
	}
	w.events = w.events[n:]
}

// after returns the events after position p, and whether the window
// holds them all: p is neither older than the window nor newer than what
// has been published (a cursor from another process that is ahead, or
// from another database, is for the log to judge).
func (w *window) after(p int64) (events []orders.Event, head int64, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.holds(p) {
		return nil, 0, false
	}
	// Positions rise through the window: find the first one after p.
	lo, hi := 0, len(w.events)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if w.events[mid].ev.Position <= p {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	events = make([]orders.Event, 0, len(w.events)-lo)
	for _, h := range w.events[lo:] {
		events = append(events, *h.ev)
	}
	return events, w.last, true
}

// delivery returns the event at position p as the hub published it, or
// nil if the window does not hold it. Every client of a process that
// restarts replays the same recent events: each is encoded once, not once
// per client.
func (w *window) delivery(p int64) *delivery {
	w.mu.RLock()
	defer w.mu.RUnlock()
	i, found := slices.BinarySearchFunc(w.events, p, func(h held, p int64) int { return cmp.Compare(h.ev.Position, p) })
	if !found {
		return nil
	}
	return w.events[i].d
}

// covers reports whether the window holds every event after position p,
// and the last position published.
func (w *window) covers(p int64) (head int64, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.last, w.holds(p)
}

func (w *window) holds(p int64) bool { return w.started && p >= w.from && p <= w.last }

// order returns the latest event of the order with the given token, if
// the window holds one: it is then the order's latest published event.
func (w *window) order(token string) (orders.Event, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	list := w.byToken[token]
	if len(list) == 0 {
		return orders.Event{}, false
	}
	return *list[len(list)-1], true
}

// orderAfter returns the events of an order after sequence number seq,
// and whether the window holds them all: it holds the order's events
// from seq+1 (or from an earlier one) on, and seq is not past the latest.
func (w *window) orderAfter(token string, seq int) ([]orders.Event, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	list := w.byToken[token]
	if len(list) == 0 || list[0].Seq > seq+1 || seq > list[len(list)-1].Seq {
		return nil, false
	}
	events := make([]orders.Event, 0, len(list))
	for _, ev := range list {
		if ev.Seq > seq {
			events = append(events, *ev)
		}
	}
	return events, true
}
