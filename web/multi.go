package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ordertracker/ordertracker/internal/sse"
	"github.com/ordertracker/ordertracker/internal/stream"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ordertracker/ordertracker/orders"
)

// This file serves several orders on one event stream, so that one browser
// needs one connection however many tracking tabs it has open.
//
// Over HTTP/1.1 a browser opens at most six connections to a host, and an
// EventSource holds one for as long as it lives: a seventh tracking tab
// would wait, blank, for one of the others to close. Browsers speak HTTP/2,
// which has no such limit, only over TLS. So the tracking page hands its
// order to a SharedWorker, which keeps one EventSource for every tab of the
// site, open on this stream of all their orders.

// maxMultiOrders is the most orders one multiplexed stream follows.
const maxMultiOrders = 20

// unknownEventName is the type of the event that reports a token no order
// has. It carries no id, so the browser's last event id stays as it was.
const unknownEventName = "order_unknown"

// handleMultiOrderEvents serves GET /orders/events?orders=TOKEN1,TOKEN2:
// the events of several orders on one stream. Each event is the same
// order_update as on /orders/{token}/events, whose data names the order and
// its sequence number; its id holds every order's sequence number, in the
// order of the URL, joined with dots ("4.1.2"). So the Last-Event-ID that
// the browser sends when it reconnects resumes every order exactly where it
// was, and ?since= in the same form starts them from the cursors a client
// already has.
//
// Each order is served as handleOrderEvents serves one: a subscription to
// the hub first, then the log after its cursor (its current state when it
// has none), then live events, with the sequence number dropping what was
// already sent. A token that no order has is reported once with an
// order_unknown event and otherwise ignored: any status but 200 would make
// EventSource give up on the other orders too. The stream ends once every
// order is finished, and a client that has seen the end of them all gets
// 204.
func handleMultiOrderEvents(store orderEvents, hub *Hub, cfg StreamConfig, log *slog.Logger) http.Handler {
	cfg = cfg.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tokens, err := multiTokens(r.URL.Query().Get("orders"))
		if err != nil {
			// A list that can never be served: giving up is right.
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m := &multiStream{orders: make([]*followedOrder, len(tokens)), byID: make(map[int64]*followedOrder)}
		cursors := multiCursors(r, len(tokens))
		for i, token := range tokens {
			f := &followedOrder{token: token, given: cursors[i]}
			m.orders[i] = f
			o, err := store.Get(ctx, token)
			if errors.Is(err, orders.ErrNotFound) {
				f.unknown = true
				continue
			}
			if err != nil {
				streamUnavailable(w, r, cfg, log, err)
				return
			}
			f.id = o.ID
			m.byID[o.ID] = f
			cursor, err := strconv.Atoi(f.given)
			if err != nil || cursor > o.Seq {
				cursor = o.Seq - 1 // no cursor: start from the current state
			} else {
				f.started = true
				f.done = cursor == o.Seq && o.Status.Terminal()
			}
			f.last = cursor
		}
		if m.live() == 0 && !m.anyUnknown() {
			w.WriteHeader(http.StatusNoContent) // every order has ended, and the client saw it
			return
		}

		// One subscription per order, as a stream of that order alone would
		// hold: each counts against the hub's cap on streams.
		var subs []*subscription
		for _, f := range m.orders {
			if f.unknown || f.done {
				continue
			}
			sub, admitted := hub.Subscribe(f.id)
			if !admitted {
				streamBusy(w, cfg)
				return
			}
			defer hub.Unsubscribe(sub)
			subs = append(subs, sub)
		}
		s := startStream(w, cfg, hub)
		for _, f := range m.orders {
			if f.unknown && s.write(m.unknownFrame(s.buf[:0], f.token)) != nil {
				return
			}
		}
		for _, f := range m.orders {
			if f.unknown || f.done {
				continue
			}
			backlog, err := store.Events(ctx, f.id, f.last)
			if err != nil {
				s.abandon(log, err)
				return
			}
			for _, ev := range backlog {
				if !m.sent(ev) {
					continue
				}
				if s.write(m.frame(s.buf[:0], ev)) != nil {
					return
				}
				hub.sent.Inc()
				if f.done {
					break
				}
			}
		}
		if s.flush() != nil || m.live() == 0 {
			return
		}
		live, stop := merge(ctx, subs)
		defer stop()
		s.follow(ctx, live, func(d *delivery) ([]byte, bool) {
			if !m.sent(d.event) {
				return nil, false
			}
			return m.frame(s.buf[:0], d.event), m.live() == 0
		})
	})
}

// A multiStream is the state of one multiplexed stream: its orders, in the
// order of the URL, each with the sequence number it has reached.
type multiStream struct {
	orders []*followedOrder
	byID   map[int64]*followedOrder
}

// A followedOrder is one order of a multiplexed stream.
type followedOrder struct {
	token   string
	given   string // the client's cursor for it, "" for none
	unknown bool   // no order has the token
	id      int64
	last    int // the sequence number sent last, or the client's cursor
	// started reports whether last is a cursor the client has: one it gave,
	// or one of a frame sent. Until then the order's part of the id stays
	// empty, so a reconnect starts it from its current state again.
	started bool
	done    bool // its terminal event has been sent, or the client has it
}

// sent records that ev is about to be sent, and reports false for an event
// the stream must not send: one of an order it does not follow, one already
// sent, or one after the end.
func (m *multiStream) sent(ev orders.Event) bool {
	f := m.byID[ev.OrderID]
	if f == nil || f.done || ev.Seq <= f.last {
		return false
	}
	f.last, f.started = ev.Seq, true
	f.done = ev.Status.Terminal()
	return true
}

// live is how many orders may still have events to send.
func (m *multiStream) live() int {
	n := 0
	for _, f := range m.orders {
		if !f.unknown && !f.done {
			n++
		}
	}
	return n
}

func (m *multiStream) anyUnknown() bool {
	for _, f := range m.orders {
		if f.unknown {
			return true
		}
	}
	return false
}

// id is the event id that resumes every order: the cursors in URL order,
// joined with dots. An unknown token keeps the cursor the client gave.
func (m *multiStream) id() string {
	var b strings.Builder
	for i, f := range m.orders {
		if i > 0 {
			b.WriteByte('.')
		}
		switch {
		case f.unknown:
			b.WriteString(f.given)
		case f.started:
			b.WriteString(strconv.Itoa(f.last))
		}
	}
	return b.String()
}

// frame appends the frame of ev, whose order's cursor is already moved on.
func (m *multiStream) frame(dst []byte, ev orders.Event) []byte {
	data, err := json.Marshal(stream.NewOrderUpdate(ev))
	if err != nil {
		panic("encode order event: " + err.Error()) // strings, numbers and times cannot fail
	}
	frame, err := sse.AppendEvent(dst, m.id(), stream.EventName, data)
	if err != nil {
		panic("encode order event: " + err.Error()) // digits, dots and a constant are never refused
	}
	return frame
}

// unknownFrame appends the report of a token that no order has.
func (m *multiStream) unknownFrame(dst []byte, token string) []byte {
	data, err := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	if err != nil {
		panic("encode unknown order: " + err.Error())
	}
	frame, err := sse.AppendEvent(dst, "", unknownEventName, data)
	if err != nil {
		panic("encode unknown order: " + err.Error())
	}
	return frame
}

// multiTokens reads ?orders=: tokens separated by commas, each counted once,
// in the order given.
func multiTokens(v string) ([]string, error) {
	var tokens []string
	seen := make(map[string]bool)
	for t := range strings.SplitSeq(v, ",") {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		tokens = append(tokens, t)
	}
	switch {
	case len(tokens) == 0:
		return nil, errors.New("name the orders to follow: ?orders=TOKEN1,TOKEN2")
	case len(tokens) > maxMultiOrders:
		return nil, fmt.Errorf("a stream follows at most %d orders; open another for the rest", maxMultiOrders)
	}
	return tokens, nil
}

// multiCursors reads the client's cursors for n orders: the Last-Event-ID
// header that EventSource sends when it reconnects, else ?since=, each in
// the form of the stream's ids. A value that is not n parts, each empty or a
// number, is treated as absent, never as an error. Unlike the stream of one
// order, a malformed Last-Event-ID falls back to ?since=: the browser
// reconnects to the URL it first opened, so ?since= is always there to
// fall back to, and replaying from it costs only duplicates that the
// client drops by sequence number.
func multiCursors(r *http.Request, n int) []string {
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since")} {
		if v == "" {
			continue
		}
		parts := strings.Split(v, ".")
		if len(parts) != n {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && isCursor(p)
		}
		if ok {
			return parts
		}
	}
	return make([]string, n)
}

// isCursor reports whether p is one order's part of a cursor: empty, or
// decimal digits that fit an int.
func isCursor(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	_, err := strconv.Atoi(p)
	return p == "" || err == nil
}

// merge forwards the deliveries of subs to one subscription until stop is
// called. If the hub drops any of subs for falling behind, the merged
// channel is closed, so the stream ends and its client resumes from its last
// id, exactly as with a stream of one order. stop returns once every
// forwarding goroutine has ended.
func merge(ctx context.Context, subs []*subscription) (merged *subscription, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	merged = &subscription{c: make(chan []*delivery)}
	var wg sync.WaitGroup
	for _, sub := range subs {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case batch, ok := <-sub.c:
					if !ok {
						cancel()
						return
					}
					select {
					case merged.c <- batch:
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(merged.c)
		close(done)
	}()
	return merged, func() {
		cancel()
		<-done
	}
}
