package stream

import (
	"strconv"
	"strings"

	"github.com/ordertracker/ordertracker/orders"
)

// A Subscription says which orders a stream follows and where its client
// already is: the cursor after which it wants events. Make one with
// AllOrders, OneOrder or SomeOrders.
type Subscription struct {
	kind   kind
	reset  bool     // AllOrdersReset
	after  int64    // AllOrders: a position; OneOrder: a sequence number, -1 for none
	tokens []string // OneOrder: one; SomeOrders: in the client's order
	given  []string // SomeOrders: each order's cursor as the client gave it, "" for none
	owner  string   // OwnedBy
	hops   bool     // WithHops
	tag    string   // Tagged (demo.go)
}

type kind uint8

const (
	allOrders kind = iota + 1
	oneOrder
	someOrders
)

// AllOrders follows every order, from the event after position after; its
// events' ids are their positions in the log.
func AllOrders(after int64) Subscription {
	return Subscription{kind: allOrders, after: max(after, 0)}
}

// AllOrdersReset follows every order from the event after position head,
// for a client whose cursor is too far behind to replay: the stream starts
// with a reset event, whose id is head, that tells the client to load its
// state afresh (the staff board reloads), instead of replaying a history
// that could be the whole log.
func AllOrdersReset(head int64) Subscription {
	return Subscription{kind: allOrders, after: max(head, 0), reset: true}
}

// OneOrder follows the order with the given token from the event after
// sequence number after, or, when after is negative, from its current state;
// its events' ids are the order's sequence numbers.
func OneOrder(token string, after int) Subscription {
	return Subscription{kind: oneOrder, tokens: []string{token}, after: int64(max(after, -1))}
}

// SomeOrders follows several orders on one stream. cursors[i] is the
// client's cursor for tokens[i]: its decimal sequence number, or "" to
// start from the order's current state. Each event's id holds every order's
// cursor, in the order of tokens, joined with dots ("4.1.4"), so that the
// Last-Event-ID a browser sends when it reconnects resumes every order.
//
// Its replay must hold, for each order that exists, every event after the
// client's cursor and at least the order's latest event even when the
// client has it: that is how the stream learns which tokens name no order
// (each is reported once, in an order_unknown event) and which orders have
// already ended.
func SomeOrders(tokens, cursors []string) Subscription {
	return Subscription{kind: someOrders, tokens: tokens, given: cursors}
}

// OwnedBy returns the subscription with an owner: a key, such as a staff
// session's token, under which Hub.EndOwner ends the stream while it is
// open.
func (s Subscription) OwnedBy(owner string) Subscription {
	s.owner = owner
	return s
}

// WithHops returns the subscription asking for the last hop of every event
// it is written: after each write of live events, the stream gets a hop
// event that says when the hub wrote them.
func (s Subscription) WithHops() Subscription {
	s.hops = true
	return s
}

// A cursor is where a stream is: what it has sent, or what its client had
// when it connected. Its one rule, fresh, decides for every event, whether
// it comes from the log, from the batches that arrived while the stream
// replayed, or live, whether the stream sends it, so that each event goes
// out exactly once and in order.
//
// What the shard's writer reads of it for every batch comes first: kind,
// ended and last fill the first 16 bytes.
type cursor struct {
	kind  kind
	ended bool  // oneOrder: its terminal event has been sent
	last  int64 // allOrders: a position; oneOrder: a sequence number, -1 for none
	set   *orderSet
	token string // oneOrder
}

func newCursor(sub Subscription) cursor {
	c := cursor{kind: sub.kind, last: sub.after}
	switch sub.kind {
	case oneOrder:
		c.token = sub.tokens[0]
	case someOrders:
		c.set = newOrderSet(sub.tokens, sub.given)
	}
	return c
}

// fresh reports whether the stream has yet to send ev, and if so moves the
// cursor past it.
func (c *cursor) fresh(ev *orders.Event) bool {
	switch c.kind {
	case allOrders:
		if ev.Position <= c.last {
			return false
		}
		c.last = ev.Position
	case oneOrder:
		if c.ended || ev.Token != c.token {
			return false
		}
		if int64(ev.Seq) <= c.last {
			// The client has it; if it ended the order, the client saw the end.
			c.ended = ev.Status.Terminal()
			return false
		}
		c.last = int64(ev.Seq)
		c.ended = ev.Status.Terminal()
	case someOrders:
		return c.set.fresh(ev)
	}
	return true
}

// finished reports whether the stream can never have anything more to send.
func (c *cursor) finished() bool {
	switch c.kind {
	case oneOrder:
		return c.ended
	case someOrders:
		return c.set.live() == 0
	}
	return false
}

// An orderSet is where a stream of several orders is with each of them.
type orderSet struct {
	orders  []*followed // in the client's order
	byToken map[string]*followed
}

// A followed order is one order of a stream of several.
type followed struct {
	token string
	given string // the client's cursor, "" for none
	known bool   // the replay showed that the order exists
	last  int    // the sequence number sent last, or the client's cursor; -1 for none
	done  bool   // its terminal event has been sent, or the client has it
}

func newOrderSet(tokens, given []string) *orderSet {
	s := &orderSet{orders: make([]*followed, len(tokens)), byToken: make(map[string]*followed, len(tokens))}
	for i, token := range tokens {
		f := &followed{token: token, last: -1}
		if i < len(given) {
			f.given = given[i]
		}
		if n, err := strconv.Atoi(f.given); err == nil && n >= 0 {
			f.last = n
		}
		s.orders[i] = f
		s.byToken[token] = f
	}
	return s
}

func (s *orderSet) fresh(ev *orders.Event) bool {
	f := s.byToken[ev.Token]
	if f == nil {
		return false
	}
	if !f.known {
		// The first event of an order is one of its replay, which holds at
		// least its latest event: a cursor beyond it is from another
		// world (another database, a reset), and counts as none.
		f.known = true
		if ev.Seq < f.last {
			f.last = -1
		}
	}
	if f.done {
		return false
	}
	if ev.Seq <= f.last {
		// The client has it; if it ended the order, the client saw the end.
		f.done = ev.Status.Terminal()
		return false
	}
	f.last = ev.Seq
	f.done = ev.Status.Terminal()
	return true
}

// live is how many of the orders may still have events to send. Before the
// replay has shown which orders exist, that is every order.
func (s *orderSet) live() int {
	n := 0
	for _, f := range s.orders {
		if !f.done {
			n++
		}
	}
	return n
}

// unknown marks the orders that the replay did not show as unknown (so
// they count as done) and returns their tokens.
func (s *orderSet) unknown() []string {
	var tokens []string
	for _, f := range s.orders {
		if !f.known {
			f.done = true
			tokens = append(tokens, f.token)
		}
	}
	return tokens
}

// id is the event id that resumes every order: the cursors in the client's
// order, joined with dots. An unknown order keeps the cursor the client
// gave; one the stream has no cursor for yet is left empty, so that a
// reconnect starts it from its current state.
func (s *orderSet) id() string {
	var b strings.Builder
	for i, f := range s.orders {
		if i > 0 {
			b.WriteByte('.')
		}
		switch {
		case !f.known:
			b.WriteString(f.given)
		case f.last >= 0:
			b.WriteString(strconv.Itoa(f.last))
		}
	}
	return b.String()
}
