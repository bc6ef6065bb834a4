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

	"github.com/ordertracker/ordertracker/orders"
	"github.com/ordertracker/ordertracker/static"
	views "github.com/ordertracker/ordertracker/templ"
)

// StaffConfig sets up the staff side: sign-in, the board of all orders, and
// the buttons that move orders on.
type StaffConfig struct {
	// Password is the staff password. Empty turns the staff side off: every
	// /staff address then answers with a page that says how to turn it on.
	Password string
	// Sessions keeps the staff's sessions. Nil keeps them in this process's
	// memory, which suits a single process that may forget them on restart.
	Sessions scs.Store
	// SessionLifetime is how long a sign-in lasts; zero means 12 hours.
	SessionLifetime time.Duration
	// SecureCookie marks the session cookie Secure on every response, for a
	// site whose TLS ends at a proxy in front of this server. A request that
	// arrives over TLS gets a Secure cookie either way.
	SecureCookie bool
}

// staffOrders is what the staff board reads and changes.
type staffOrders interface {
	List(ctx context.Context, opts orders.ListOptions) ([]orders.Order, error)
	Head(ctx context.Context) (int64, error)
	Get(ctx context.Context, token string) (orders.Order, error)
	Advance(ctx context.Context, token string, from orders.Status, by orders.Actor) (orders.Event, error)
	Cancel(ctx context.Context, token string, by orders.Actor) (orders.Event, error)
}

// The board shows every unfinished order, up to boardActive of them, and
// the finished ones among the newest boardRecent.
const (
	boardActive = 500
	boardRecent = 100
)

// staffStylesheet and staffScript are the fingerprinted URLs of the staff
// pages' own files, worked out once.
var (
	staffStylesheet = sync.OnceValue(func() string { return static.URL("staff.css") })
	staffScript     = sync.OnceValue(func() string { return static.URL("staff.js") })
)

// handleStaffBoard serves GET /staff: every order, grouped by status, with
// the message a move left for it.
func handleStaffBoard(store staffOrders, sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		renderBoard(w, r, store, log, http.StatusOK, sessions.popFlash(r.Context()), false)
	})
}

// renderBoard writes the board with status and a message.
//
// It reads the head of the event log before the orders, and the script
// follows the stream from there: an event that commits between the two
// reads arrives on the stream although the board already shows it, and
// the script drops it by its sequence number; no event can be missed.
func renderBoard(w http.ResponseWriter, r *http.Request, store staffOrders, log *slog.Logger, status int, message string, problem bool) {
	ctx := r.Context()
	head, err := store.Head(ctx)
	if err != nil {
		errorPage(w, r, log, err)
		return
	}
	active, err := store.List(ctx, orders.ListOptions{Active: true, Limit: boardActive})
	if err != nil {
		errorPage(w, r, log, err)
		return
	}
	recent, err := store.List(ctx, orders.ListOptions{Limit: boardRecent})
	if err != nil {
		errorPage(w, r, log, err)
		return
	}
	// An order may have finished between the two reads and be in both:
	// keep its newer state.
	seen := make(map[int64]int, len(active))
	list := active
	for i, o := range list {
		seen[o.ID] = i
	}
	for _, o := range recent {
		i, ok := seen[o.ID]
		switch {
		case !ok && o.Status.Terminal():
			list = append(list, o)
		case ok && o.Seq > list[i].Seq:
			list[i] = o
		}
	}
	board := views.NewStaffBoard(pageAssets(), list, "/staff/events?since="+strconv.FormatInt(head, 10))
	board.Stylesheet, board.Script = staffStylesheet(), staffScript()
	board.Message, board.Problem = message, problem
	render(w, r, log, status, views.StaffBoardPage(board))
}

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
			return store.Advance(ctx, token, from, orders.ByStaff)
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
			return store.Cancel(ctx, token, orders.ByStaff)
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
		http.Redirect(w, r, "/staff", http.StatusSeeOther)
	})
}

// lower is a status in words, in the middle of a sentence.
func lower(s orders.Status) string { return strings.ToLower(s.Label()) }

// wantsJSON reports whether the request comes from staff.js, which asks for
// JSON, rather than from a plain form.
func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Accept"), "application/json")
}
