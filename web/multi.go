package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ordertracker/ordertracker/internal/stream"
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

// severalOrdersEvents is what a stream of several orders reads.
type severalOrdersEvents interface {
	EventsOf(ctx context.Context, tokens []string, after []*int) ([]orders.Event, error)
}

// handleMultiOrderEvents serves GET /orders/events?orders=TOKEN1,TOKEN2:
// the events of several orders on one stream, in the order they happened.
// Each event is the same order_update as on /orders/{token}/events, whose
// data names the order and its sequence number; its id holds every order's
// sequence number, in the order of the URL, joined with dots ("4.1.2"). So
// the Last-Event-ID that the browser sends when it reconnects resumes every
// order exactly where it was, and ?since= in the same form starts them from
// the cursors a client already has.
//
// It connects from the hub's window of recent events when the window holds
// every order's part of the replay, else with one query for all the
// orders. A token that no order has
// is reported once with an order_unknown event and otherwise ignored: any
// status but 200 would make EventSource give up on the other orders too.
// The stream ends once every order is finished, and a client that has seen
// the end of them all gets 204.
func handleMultiOrderEvents(store severalOrdersEvents, hub *stream.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hub.TurnAwayWhileDraining(w) {
			return
		}
		tokens, err := multiTokens(r.URL.Query().Get("orders"))
		if err != nil {
			// A list that can never be served: giving up is right.
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cursors := multiCursors(r, len(tokens))
		after := make([]*int, len(tokens))
		for i, c := range cursors {
			if n, err := strconv.Atoi(c); err == nil {
				after[i] = &n
			}
		}
		hub.Serve(w, r, withHops(r, stream.SomeOrders(tokens, cursors)), func(ctx context.Context) ([]orders.Event, error) {
			if events, held := recentOf(hub, tokens, after); held {
				return events, nil
			}
			return store.EventsOf(ctx, tokens, after)
		})
	})
}

// recentOf is EventsOf read from the hub's window: each order's events
// after its cursor and at least its latest, in position order, if the
// window holds every order's part. A token the window does not know may
// name an order whose events are older, or none, and a cursor past the
// window's latest event may come from a process that heard of it first:
// only the log can tell.
func recentOf(hub *stream.Hub, tokens []string, after []*int) ([]orders.Event, bool) {
	var events []orders.Event
	for i, token := range tokens {
		latest, held := hub.RecentOrder(token)
		if !held || after[i] != nil && *after[i] > latest.Seq {
			return nil, false
		}
		seq := latest.Seq - 1
		if after[i] != nil {
			seq = min(*after[i], seq)
		}
		part, held := hub.RecentOrderAfter(token, seq)
		if !held {
			return nil, false
		}
		events = append(events, part...)
	}
	slices.SortFunc(events, func(a, b orders.Event) int { return cmp.Compare(a.Position, b.Position) })
	return events, true
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
