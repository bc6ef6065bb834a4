package web

import (
	"context"
	"errors"
	"fmt"
	"github.com/ordertracker/ordertracker/internal/stream"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/orders"
	"github.com/ordertracker/ordertracker/static"
	views "github.com/ordertracker/ordertracker/templ"
)

// StaffConfig sets up the staff side: sign-in, the board of all orders, and
// the buttons that move orders on.
type StaffConfig struct {
	// Accounts are the staff's accounts, which they sign in with. Nil turns
	// the staff side off: every /staff address then answers with a page
	// that says how to turn it on.
	Accounts *accounts.Store
	// Sessions keeps the staff's sessions. Nil keeps them in this process's
	// memory, which suits a single process that may forget them on restart.
	Sessions scs.Store
	// SessionLifetime is how long a sign-in lasts; zero means 12 hours.
	SessionLifetime time.Duration
	// SessionCheck is how often Handler.Run reads the session of each open
	// staff stream, to end the streams of sessions that have ended; zero
	// means every 2 seconds.
	SessionCheck time.Duration
	// SecureCookie marks the session cookie Secure on every response, for a
	// site whose TLS ends at a proxy in front of this server. A request that
	// arrives over TLS gets a Secure cookie either way.
	SecureCookie bool
}

// staffOrders is what the staff board reads and changes.
type staffOrders interface {
	Board(ctx context.Context, limits map[orders.Status]int) (orders.Board, error)
	ListStatus(ctx context.Context, p orders.StatusPage) ([]orders.Order, error)
	Get(ctx context.Context, token string) (orders.Order, error)
	Events(ctx context.Context, orderID int64, afterSeq int) ([]orders.Event, error)
	Stages() orders.StageDurations
	Find(ctx context.Context, q string, limit int) ([]orders.Order, error)
	StaffAdvance(ctx context.Context, token string, from orders.Status, who orders.StaffMember) (orders.Event, error)
	StaffCancel(ctx context.Context, token string, who orders.StaffMember) (orders.Event, error)
}

// staffMoverOf is the signed-in account as the event log names it.
func staffMoverOf(ctx context.Context) orders.StaffMember {
	a := staffMember(ctx)
	return orders.StaffMember{ID: a.ID, Name: a.Name}
}

// staffStylesheet and staffScript are the fingerprinted URLs of the staff
// pages' own files, worked out once.
var (
	staffStylesheet = sync.OnceValue(func() string { return static.URL("staff.css") })
	staffScript     = sync.OnceValue(func() string { return static.URL("staff.js") })
)

// handleStaffBoard serves GET /staff: how many orders are in each status,
// and a window onto each, with the message a move left. The query says
// how many cards an unfinished column shows (/staff?cooking=100), which is
// how "Show more" works without JavaScript.
func handleStaffBoard(store staffOrders, sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		renderBoard(w, r, store, log, http.StatusOK, sessions.popFlash(r.Context()), false)
	})
}

// renderBoard writes the board with status and a message.
//
// The counts, the cards and the head of the event log come from one
// snapshot, and the script follows the stream from that head: every event
// after it changes the counts once, and none before it does again.
func renderBoard(w http.ResponseWriter, r *http.Request, store staffOrders, log *slog.Logger, status int, message string, problem bool) {
	windows := views.ParseBoardWindows(r.URL.Query())
	b, err := store.Board(r.Context(), windows.Limits())
	if err != nil {
		errorPage(w, r, log, err)
		return
	}
	board := views.NewStaffBoard(pageAssets(), b, windows, "/staff/events?since="+strconv.FormatInt(b.Head, 10), "/staff/orders")
	board.Stylesheet, board.Script = staffStylesheet(), staffScript()
	board.SetStages(store.Stages())
	board.Message, board.Problem = message, problem
	board.Member = staffMember(r.Context()).Name
	render(w, r, log, status, views.StaffBoardPage(board))
}

// boardOrder is an order as the script reads it to make a card: the names
// are those of the stream's order_update data, so that one function builds
// a card from either.
type boardOrder struct {
	Token  string        `json:"token"`
	Seq    int           `json:"seq"`
	Status orders.Status `json:"status"`
	// At is when the order entered its status: with the token, its place
	// in the column.
	At         time.Time     `json:"at"`
	Name       string        `json:"name"`
	Items      []orders.Item `json:"items"`
	TotalCents int           `json:"total_cents"`
	// Staff names the staff account that made the order's latest change.
	Staff string `json:"staff,omitempty"`
}

// boardOrderOf is o as the script reads it.
func boardOrderOf(o orders.Order) boardOrder {
	return boardOrder{
		Token: o.Token, Seq: o.Seq, Status: o.Status, At: o.UpdatedAt.UTC(),
		Name: o.CustomerName, Items: o.Items, TotalCents: o.TotalCents, Staff: o.Staff.Name,
	}
}

// searchMax is the most orders the board's filter is told of at once, and
// maxSearch the longest text it looks for: longer than any name or token.
const (
	searchMax = 20
	maxSearch = 200
)

// boardPageMax is the most orders one request to /staff/orders gets.
const boardPageMax = 100

// handleStaffOrders serves GET /staff/orders, the next orders of one
// column after a card, for the script to fill a column whose cards have
// left:
//
//	/staff/orders?status=cooking&after=2030-01-01T12:00:00.123456Z&token=ABC…&limit=20
//
// after and token are the at and token of the column's last card; without
// them the page starts at the head of the column. The answer is
// {"orders": [...], "more": true|false}, more saying whether any order
// comes after the last one.
//
// With q instead, it finds orders for the board's filter, in the same
// shape (see orders.Store.Find): /staff/orders?q=lena.
func handleStaffOrders(store staffOrders, log *slog.Logger) http.Handler {
	type page struct {
		Orders []boardOrder `json:"orders"`
		More   bool         `json:"more"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Has("q") {
			if len(q.Get("q")) > maxSearch {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("q must be at most %d bytes", maxSearch)})
				return
			}
			list, err := store.Find(r.Context(), q.Get("q"), searchMax+1)
			if err != nil {
				apiError(w, r, log, err)
				return
			}
			out := page{Orders: make([]boardOrder, 0, min(len(list), searchMax)), More: len(list) > searchMax}
			for _, o := range list[:min(len(list), searchMax)] {
				out.Orders = append(out.Orders, boardOrderOf(o))
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		p := orders.StatusPage{Status: orders.Status(q.Get("status")), Limit: 20}
		if !p.Status.Valid() {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": `status must be one of the board's columns`})
			return
		}
		if v := q.Get("after"); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": `after must be a time as the board gives it (RFC 3339)`})
				return
			}
			p.After = orders.StatusKey{At: at, Token: q.Get("token")}
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": `limit must be a positive number`})
				return
			}
			p.Limit = min(n, boardPageMax)
		}
		want := p.Limit
		p.Limit++ // one more says whether there is more
		list, err := store.ListStatus(r.Context(), p)
		if err != nil {
			apiError(w, r, log, err)
			return
		}
		out := page{Orders: make([]boardOrder, 0, min(len(list), want)), More: len(list) > want}
		for _, o := range list[:min(len(list), want)] {
			out.Orders = append(out.Orders, boardOrderOf(o))
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// handleStaffOrder serves GET /staff/orders/{token}: one order, with its
// items, its whole history and its buttons. An unknown token gets the 404
// page.
func handleStaffOrder(store staffOrders, sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		renderStaffOrder(w, r, store, log, http.StatusOK, sessions.popFlash(r.Context()), false)
	})
}

// renderStaffOrder writes the page of the order named in the address, with
// status and a message.
func renderStaffOrder(w http.ResponseWriter, r *http.Request, store staffOrders, log *slog.Logger, status int, message string, problem bool) {
	ctx := r.Context()
	o, err := store.Get(ctx, chi.URLParam(r, "token"))
	if err != nil {
		errorPage(w, r, log, err)
		return
	}
	events, err := store.Events(ctx, o.ID, 0)
	if err != nil {
		errorPage(w, r, log, err)
		return
	}
	p := views.NewStaffOrder(pageAssets(), o, events, time.Now())
	p.Stylesheet = staffStylesheet()
	p.Message, p.Problem = message, problem
	render(w, r, log, status, views.StaffOrderPage(p))
}

// fromOrderPage reports whether a move's form was posted from the order's
// own page, which the answer then goes back to, rather than from the board.
func fromOrderPage(r *http.Request) bool { return r.PostForm.Get("return") == "order" }

// A move is what one of the board's buttons does to the order with the
// given token, given the posted form.
type move struct {
	do func(ctx context.Context, token string, form url.Values) (orders.Event, error)
	// conflict says why the move is not possible for o as it is now.
	conflict func(o orders.Order) string
}

// errNoFrom: an advance that does not say which status it moves from.
var errNoFrom = errors.New(`the form has no valid "from" status`)

// handleStaffAdvance serves POST /staff/orders/{token}/advance. The form
// says which status the order is to move from, as the board showed it: if
// the order has moved since (a double click, two staff at once, the worker),
// nothing changes and the answer is 409.
func handleStaffAdvance(store staffOrders, sessions *staffSessions, log *slog.Logger) http.Handler {
	return handleStaffMove(store, sessions, log, move{
		do: func(ctx context.Context, token string, form url.Values) (orders.Event, error) {
			from := orders.Status(form.Get("from"))
			if !from.Valid() {
				return orders.Event{}, errNoFrom
			}
			return store.StaffAdvance(ctx, token, from, staffMoverOf(ctx))
		},
		conflict: func(o orders.Order) string {
			return fmt.Sprintf("Nothing changed: %s’s order is already %s.", o.CustomerName, lower(o.Status))
		},
	})
}

// handleStaffCancel serves POST /staff/orders/{token}/cancel. An order that
// is out for delivery or finished cannot be cancelled: 409.
func handleStaffCancel(store staffOrders, sessions *staffSessions, log *slog.Logger) http.Handler {
	return handleStaffMove(store, sessions, log, move{
		do: func(ctx context.Context, token string, _ url.Values) (orders.Event, error) {
			return store.StaffCancel(ctx, token, staffMoverOf(ctx))
		},
		conflict: func(o orders.Order) string {
			if o.Status == orders.Cancelled {
				return fmt.Sprintf("Nothing changed: %s’s order is already cancelled.", o.CustomerName)
			}
			return fmt.Sprintf("Nothing changed: %s’s order is %s and can no longer be cancelled.", o.CustomerName, lower(o.Status))
		},
	})
}

// handleStaffMove runs a move for a form post or for staff.js.
//
// A form post that succeeds is sent back to the board (303, post-redirect-
// get) with a message waiting in the session; one that fails gets the board
// with the reason, under the failure's own status: 409 for a move that is
// not possible any more, so that the status tells the truth about the
// request. The script asks for JSON and gets the order's new state, or the
// reason, with the same statuses.
func handleStaffMove(store staffOrders, sessions *staffSessions, log *slog.Logger, m move) http.Handler {
	type moved struct {
		Message string             `json:"message"`
		Order   stream.StaffUpdate `json:"order"` // as the stream shows it, so the script treats the answer to its click like an event
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token := chi.URLParam(r, "token")
		fail := func(status int, message string) {
			if wantsJSON(r) {
				writeJSON(w, status, map[string]any{"error": message})
				return
			}
			if fromOrderPage(r) {
				renderStaffOrder(w, r, store, log, status, message, true)
				return
			}
			renderBoard(w, r, store, log, status, message, true)
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, "The button’s form could not be read. Reload the board and try again.")
			return
		}
		ev, err := m.do(ctx, token, r.PostForm)
		switch {
		case errors.Is(err, errNoFrom):
			fail(http.StatusBadRequest, "The button’s form was incomplete. Reload the board and try again.")
			return
		case err != nil:
			status, message := statusOf(err), messageOf(err)
			if status >= 500 {
				log.ErrorContext(ctx, "staff move failed", "err", err)
			}
			if status == http.StatusConflict {
				if o, getErr := store.Get(ctx, token); getErr == nil {
					message = m.conflict(o)
				}
			}
			fail(status, message)
			return
		}
		message := fmt.Sprintf("%s’s order is now %s.", ev.CustomerName, lower(ev.Status))
		if wantsJSON(r) {
			writeJSON(w, http.StatusOK, moved{Message: message, Order: stream.NewStaffUpdate(ev)})
			return
		}
		sessions.flash(ctx, message)
		back := "/staff"
		if fromOrderPage(r) {
			back = views.StaffOrderURL(token)
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	})
}

// lower is a status in words, in the middle of a sentence.
func lower(s orders.Status) string { return strings.ToLower(s.Label()) }

// wantsJSON reports whether the request comes from staff.js, which asks for
// JSON, rather than from a plain form.
func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Accept"), "application/json")
}
