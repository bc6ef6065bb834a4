package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
	views "github.com/ordertracker/ordertracker/templ"
)

// This file serves /demo, where one order is seen by its customer and by
// the staff board side by side, and, with DemoConfig.Controls, the buttons
// that break this process's streams, listener and worker on purpose, so
// that a learner can watch the pages recover.

// DemoConfig is the demo page's side of the configuration.
type DemoConfig struct {
	// Controls turns on the buttons that break things (DEMO_CONTROLS).
	// Off, their addresses answer 404. Never on in production: anyone may
	// then end every stream of the process.
	Controls bool
	// Listener is the process's listener, whose connection a control
	// terminates; nil means the control says there is none.
	Listener DemoListener
	// Worker is the process's worker, which a control pauses; nil when the
	// process runs none.
	Worker DemoWorker
}

// DemoListener is what the controls need of the process's listener.
type DemoListener interface {
	// Terminate ends the listener's database connection from the server's
	// side; orders.ErrNotListening when it has none.
	Terminate(ctx context.Context) error
	Connected() bool
	Reconnects() uint64
}

// ListenerOn is l as the controls use it: its connection is terminated
// through pool.
func ListenerOn(l *orders.Listener, pool *pgxpool.Pool) DemoListener { return listenerOn{l, pool} }

type listenerOn struct {
	*orders.Listener
	pool *pgxpool.Pool
}

func (l listenerOn) Terminate(ctx context.Context) error { return l.Listener.Terminate(ctx, l.pool) }

// DemoWorker is what the controls need of the process's worker.
type DemoWorker interface {
	Pause()
	Resume()
	Paused() bool
}

// demoStore is what the demo page reads.
type demoStore interface {
	Get(ctx context.Context, token string) (orders.Order, error)
	Head(ctx context.Context) (int64, error)
}

// handleDemoPage serves GET /demo?order=TOKEN: the order beside the board.
// The order may be named by its token or by its tracking page's address.
// Without one the page asks for one; one that no order has gets the same
// page with a 404.
func handleDemoPage(store demoStore, controls, staffOn bool, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := views.DemoPage{Assets: pageAssets(), Controls: controls, StaffOn: staffOn}
		token := demoToken(r.URL.Query().Get("order"))
		if token == "" {
			p.Rendered = time.Now()
			render(w, r, log, http.StatusOK, views.Demo(p))
			return
		}
		ctx := r.Context()
		// The head first: the board's stream starts after it, and the
		// order as read next is at least as new, so the board misses
		// nothing of it.
		head, err := store.Head(ctx)
		if err != nil {
			errorPage(w, r, log, err)
			return
		}
		o, err := store.Get(ctx, token)
		if errors.Is(err, orders.ErrNotFound) {
			p.Problem = "No order has that token. Copy the address of a tracking page, or place an order."
			p.Rendered = time.Now()
			render(w, r, log, http.StatusNotFound, views.Demo(p))
			return
		}
		if err != nil {
			errorPage(w, r, log, err)
			return
		}
		p.Order = views.NewDemoOrder(o, head)
		p.Rendered = time.Now()
		render(w, r, log, http.StatusOK, views.Demo(p))
	})
}

// demoToken is the token in what a visitor pasted: a token, or the address
// of its tracking page.
func demoToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.LastIndex(v, "/orders/"); i >= 0 {
		v = v[i+len("/orders/"):]
	}
	if i := strings.IndexAny(v, "/?#"); i >= 0 {
		v = v[:i]
	}
	return v
}

// demoTagPattern is what a stream's ?demo= tag may be: the demo page's
// random id. Anything else tags nothing.
var demoTagPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// tagged tags a stream with the ?demo= id of the page that opened it, for
// the control that makes that page's streams stall (Hub.Stall).
func tagged(r *http.Request, sub stream.Subscription) stream.Subscription {
	if tag := r.URL.Query().Get("demo"); demoTagPattern.MatchString(tag) {
		return sub.Tagged(tag)
	}
	return sub
}

// demoControls routes the controls under /demo. Each is a POST, protected
// from cross-origin forgery like every other (routes.go), and answers JSON
// to the page's script, or sends a form post back to the demo page.
func demoControls(r chi.Router, cfg DemoConfig, hub *stream.Hub, log *slog.Logger) {
	r.Method(http.MethodPost, "/demo/streams/end", handleDemoControl(log, func(context.Context, *http.Request) (int, string) {
		hub.EndAll()
		return http.StatusOK, "This process ended every one of its streams, cleanly, each told to come back within its retry: delay. " +
			"Each browser reconnects by itself with the last id it saw as Last-Event-ID, and the server replays what came after it."
	}))
	r.Method(http.MethodPost, "/demo/streams/stall", handleDemoControl(log, func(_ context.Context, r *http.Request) (int, string) {
		tag := r.PostForm.Get("tag")
		if !demoTagPattern.MatchString(tag) {
			return http.StatusBadRequest, "The stall needs the page's streams' id, which only its script knows: turn JavaScript on."
		}
		hub.Stall(tag)
		return http.StatusOK, "This process writes nothing more to this page's streams, not even a heartbeat, and keeps their connections open: " +
			"a connection that died without closing. The page's watchdog finds them silent and opens new ones."
	}))
	r.Method(http.MethodPost, "/demo/listener/terminate", handleDemoControl(log, func(ctx context.Context, _ *http.Request) (int, string) {
		l := cfg.Listener
		if l == nil {
			return http.StatusConflict, "This process has no listener."
		}
		before := l.Reconnects()
		began := time.Now()
		err := l.Terminate(ctx)
		if errors.Is(err, orders.ErrNotListening) {
			return http.StatusConflict, "The listener has no connection right now: it is reconnecting already."
		}
		if err != nil {
			log.WarnContext(ctx, "demo: terminate the listener's connection", "err", err)
			return http.StatusServiceUnavailable, "The database refused to terminate the listener's connection."
		}
		// Say how long it took to come back: it reconnects by itself,
		// LISTENs again and reads the log after its position.
		wait, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for l.Reconnects() == before || !l.Connected() {
			select {
			case <-wait.Done():
				return http.StatusOK, "The database ended the listener's connection. It has not reconnected yet; meanwhile the streams stay open, and events wait in the log."
			case <-tick.C:
			}
		}
		return http.StatusOK, fmt.Sprintf("The database ended the listener's connection (pg_terminate_backend). The listener reconnected %d ms later, "+
			"LISTENed again and read the log after the last event it had handed on: whatever committed meanwhile arrives once.", time.Since(began).Milliseconds())
	}))
	pause := func(on bool) func(context.Context, *http.Request) (int, string) {
		return func(context.Context, *http.Request) (int, string) {
			w := cfg.Worker
			if w == nil {
				return http.StatusConflict, "This process runs no worker: it is a process of its own (with Docker Compose, `docker compose pause worker`)."
			}
			if on {
				w.Pause()
				return http.StatusOK, "The worker is paused: orders stay where they are, and the streams stay live with heartbeats only."
			}
			w.Resume()
			return http.StatusOK, "The worker is running again: every order that fell due meanwhile moves on now."
		}
	}
	r.Method(http.MethodPost, "/demo/worker/pause", handleDemoControl(log, pause(true)))
	r.Method(http.MethodPost, "/demo/worker/resume", handleDemoControl(log, pause(false)))
}

// handleDemoControl runs one control and says what it did: JSON
// {"message": ...} to a script that asks for it, else the demo page of the
// form's order (303).
func handleDemoControl(log *slog.Logger, do func(context.Context, *http.Request) (int, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := readForm(w, r); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "The form could not be read."})
			return
		}
		status, message := do(r.Context(), r)
		if !wantsJSON(r) {
			back := "/demo"
			if token := demoToken(r.PostForm.Get("order")); token != "" {
				back = views.DemoURL(token)
			}
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		writeJSON(w, status, map[string]string{"message": message})
	})
}
