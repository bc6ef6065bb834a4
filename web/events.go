package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// The event stream handlers only check who may see what, read the client's
// cursor and say what to replay; the hub (internal/stream) does the rest,
// the same way for every stream.
//
// A replay is read from the hub's window of recent events when it holds
// all of it, and from the log otherwise. A client that reconnects is
// usually a few events behind, so after a restart, when every client of
// the old process comes back at once, the window serves them and the
// database hardly notices.

// orderEvents is what a customer's stream reads.
type orderEvents interface {
	Get(ctx context.Context, token string) (orders.Order, error)
	Events(ctx context.Context, orderID int64, afterSeq int) ([]orders.Event, error)
}

// handleOrderEvents serves GET /orders/{token}/events: the events of one
// order, with the order's own sequence number as the event id. Without a
// cursor the stream starts with the order's current state.
func handleOrderEvents(store orderEvents, hub *stream.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hub.TurnAwayWhileDraining(w) {
			return
		}
		token := chi.URLParam(r, "token")
		cursor, ok := streamCursor(r)
		// The window's latest event of the order proves the order exists
		// and says how far it has gone, unless the client is further on
		// than this process has heard (another process was quicker).
		var id int64
		var seq int
		heard := false // the window has heard of the order's latest event
		if latest, held := hub.RecentOrder(token); held && (!ok || cursor <= int64(latest.Seq)) {
			id, seq, heard = latest.OrderID, latest.Seq, true
		} else {
			order, err := store.Get(r.Context(), token)
			if errors.Is(err, orders.ErrNotFound) {
				http.NotFound(w, r)
				return
			}
			if err != nil {
				hub.Unavailable(w, r, err)
				return
			}
			token, id, seq = order.Token, order.ID, order.Seq
		}
		if !ok || cursor > int64(seq) {
			cursor = -1 // none, or one from another world: start from the current state
		}
		// The replay holds the order's latest event even when the client
		// has it: that is how the stream sees that the client has seen
		// the end (and answers 204, which stops EventSource).
		after := min(int(cursor), seq-1)
		if cursor < 0 {
			after = seq - 1
		}
		hub.Serve(w, r, withHops(r, stream.OneOrder(token, int(cursor))), func(ctx context.Context) ([]orders.Event, error) {
			// Only the log holds what the window has yet to hear of: from
			// the window, a client that has seen the order's last event
			// would be replayed nothing, and its stream would wait for ever
			// instead of ending.
			if heard {
				if events, held := hub.RecentOrderAfter(token, after); held {
					return events, nil
				}
			}
			return store.Events(ctx, id, after)
		})
	})
}

// staffStreamWhileDraining turns the staff event stream away while the hub
// drains, before its session is read: a process that is going answers the
// boards that reconnect to it without a query. The stream of a board that
// is not signed in is turned away as well, and told to come back, which
// tells it nothing; the process it reaches next checks its session.
func staffStreamWhileDraining(hub *stream.Hub) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == staffEventsPath && hub.TurnAwayWhileDraining(w) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// staffEvents is what the stream of all orders reads.
type staffEvents interface {
	EventsAfter(ctx context.Context, position int64, limit int) ([]orders.Event, error)
	Head(ctx context.Context) (int64, error)
	Latest(ctx context.Context, limit int) ([]orders.Event, error)
}

// replayPage is how many events one replay query reads.
const replayPage = 500

// snapshotSize is how many of the newest orders a stream of all orders
// starts with when it has no cursor.
const snapshotSize = 100

// maxStaffReplay is the most events a stream of all orders replays: a
// client further behind (a board left asleep for a day, or a cursor of 0)
// is told to load the board afresh, rather than replaying a history that
// could be the whole log on every connection.
const maxStaffReplay = 1000

// handleStaffEvents serves GET /staff/events: the events of every order,
// with the event's position in the log as the event id. Without a cursor
// the stream starts with the current state of the newest orders.
func handleStaffEvents(store staffEvents, hub *stream.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hub.TurnAwayWhileDraining(w) {
			return
		}
		// The stream ends with the session that opened it (sessionwatch.go).
		owner := streamOwner(r.Context())
		cursor, ok := streamCursor(r)
		if ok {
			if head, held := hub.RecentHead(cursor); held && head-cursor <= maxStaffReplay {
				hub.Serve(w, r, withHops(r, stream.AllOrders(cursor).OwnedBy(owner)), func(ctx context.Context) ([]orders.Event, error) {
					if events, _, held := hub.RecentAfter(cursor); held {
						return events, nil
					}
					return replayAfter(ctx, store, cursor, nil)
				})
				return
			}
		}
		head, err := store.Head(r.Context())
		if err != nil {
			hub.Unavailable(w, r, err)
			return
		}
		if cursor > head {
			ok = false // a cursor from another world
		}
		if !ok {
			cursor = 0
		}
		if ok && head-cursor > maxStaffReplay {
			// Positions are handed out without reuse, so head-cursor is at
			// least the number of events missed.
			hub.Serve(w, r, withHops(r, stream.AllOrdersReset(head).OwnedBy(owner)), func(ctx context.Context) ([]orders.Event, error) {
				return store.EventsAfter(ctx, head, replayPage)
			})
			return
		}
		hub.Serve(w, r, withHops(r, stream.AllOrders(cursor).OwnedBy(owner)), func(ctx context.Context) ([]orders.Event, error) {
			if ok {
				return replayAfter(ctx, store, cursor, nil)
			}
			// The latest event of each of the newest orders, in position
			// order: every later event has a higher position than all of
			// them, so replaying after the last one misses nothing.
			snapshot, err := store.Latest(ctx, snapshotSize)
			if err != nil {
				return nil, err
			}
			after := head
			if len(snapshot) > 0 {
				after = snapshot[len(snapshot)-1].Position
			}
			return replayAfter(ctx, store, after, snapshot)
		})
	})
}

// replayAfter appends to events every event of the log after position
// after, read a page at a time.
func replayAfter(ctx context.Context, store staffEvents, after int64, events []orders.Event) ([]orders.Event, error) {
	for {
		page, err := store.EventsAfter(ctx, after, replayPage)
		if err != nil {
			return nil, err
		}
		events = append(events, page...)
		if len(page) < replayPage {
			return events, nil
		}
		after = page[len(page)-1].Position
	}
}

// streamCursor reads the client's cursor: the Last-Event-ID header that
// EventSource sends when it reconnects, else ?since= from the page that
// opened the stream. Anything that is not a non-negative number counts as no
// cursor: a stream must never fail for a bad cursor.
func streamCursor(r *http.Request) (int64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// withHops asks the hub for the last hop of every event, when it was
// written to this stream, for a client that says ?hops (the tracking
// page's panel does, to draw each event's journey).
func withHops(r *http.Request, sub stream.Subscription) stream.Subscription {
	sub = tagged(r, sub) // the demo page's id (demo.go)
	if r.URL.Query().Has("hops") {
		return sub.WithHops()
	}
	return sub
}
