// Package web is the HTTP side of the order tracker: pages, the JSON API,
// and the Server-Sent Events streams, served by the stream engine
// (internal/stream).
package web

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/ratelimit"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// Store is what the handlers need of orders.Store.
type Store interface {
	orderEvents
	severalOrdersEvents
	staffEvents
	pageStore
	staffOrders
	orderCanceller
	Create(ctx context.Context, n orders.NewOrder) (orders.Order, error)
}

// Config is the web side's configuration.
type Config struct {
	// Metrics is the registry that /metrics serves; the web side adds its
	// own collectors and the hub's. Nil means a registry of its own.
	Metrics *prometheus.Registry
	// Staff sets up the staff side; without accounts it is off.
	Staff StaffConfig
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, for limits and logs. The zero value trusts none: the
	// client is the connection's peer.
	TrustedProxies clientaddr.Proxies
	// OrderLimit is how many orders one client address may place, on the
	// form and the JSON API together. The zero Rate limits nothing.
	OrderLimit ratelimit.Rate
	// Demo sets up /demo's controls; the zero value leaves them off.
	Demo DemoConfig
}

// A Handler serves the whole URL surface of the application. Its staff
// side has work of its own to do in the background, which Run does.
type Handler struct {
	routes http.Handler
	// watch ends the streams of staff sessions that have ended; nil when
	// the staff side is off.
	watch func(ctx context.Context)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.routes.ServeHTTP(w, r) }

// Run ends, until ctx is done, the staff event streams whose sessions have
// ended anywhere but by sign-out in this process: by sign-out in another
// process, by expiry, by removal from the store, by signing out everywhere,
// or by the account's removal or new password (see sessionwatch.go). Without Run, a stream ends with its
// session only when the session is signed out in this process.
func (h *Handler) Run(ctx context.Context) error {
	if h.watch != nil {
		h.watch(ctx)
	}
	return nil
}

// NewHandler returns the whole URL surface of the application.
func NewHandler(store Store, hub *stream.Hub, checks []Check, cfg Config, log *slog.Logger) *Handler {
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	cfg.Metrics.MustRegister(hub.Collectors()...)
	r := chi.NewRouter()
	r.Use(clientaddr.Middleware(cfg.TrustedProxies), observeRequests(log, newHTTPMetrics(cfg.Metrics)), securityHeaders)
	orderLimit := newOrderLimit(cfg.OrderLimit, log)

	// Operators.
	r.Method(http.MethodGet, "/healthz", handleHealthz())
	r.Method(http.MethodGet, "/readyz", handleReadyz(checks))
	r.Method(http.MethodGet, "/metrics", handleMetrics(cfg.Metrics))

	// Customers: pages, event streams, and the same in JSON.
	r.Method(http.MethodGet, "/", handleHomePage(store, log))
	r.Method(http.MethodPost, "/orders", handlePlaceOrder(store, orderLimit, log))
	r.Method(http.MethodGet, "/orders/{token}", handleTrackingPage(store, log))
	r.Method(http.MethodPost, "/orders/{token}/cancel", handleCancelOrder(store, log))
	r.Method(http.MethodGet, "/my-orders", handleMyOrdersPage(log))
	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(store, hub))
	r.Method(http.MethodGet, "/orders/events", handleMultiOrderEvents(store, hub))
	r.Method(http.MethodPost, "/api/orders", handleCreateOrderJSON(store, orderLimit, log))
	r.Method(http.MethodGet, "/api/orders/{token}", handleOrderJSON(store, log))
	r.Method(http.MethodPost, "/api/orders/{token}/cancel", handleCancelOrderJSON(store, log))

	// The side-by-side demo, and the controls that break things (demo.go).
	r.Method(http.MethodGet, "/demo", handleDemoPage(store, cfg.Demo.Controls, cfg.Staff.Accounts != nil, log))
	if cfg.Demo.Controls {
		demoControls(r, cfg.Demo, hub, log)
	}

	r.Method(http.MethodGet, "/static/*", handleStatic(log))
	r.NotFound(handleNotFoundPage(log).ServeHTTP)

	// Staff: everything but the sign-in form and the session probe needs a
	// session.
	h := &Handler{}
	r.Route("/staff", func(r chi.Router) {
		accts := cfg.Staff.Accounts
		if accts == nil {
			r.Handle("/", handleStaffOff(log))
			r.Handle("/*", handleStaffOff(log))
			return
		}
		sessions := newStaffSessions(cfg.Staff, hub.Unavailable, log)
		devices := deviceCookies{key: accts.DeviceKey, alwaysSecure: cfg.Staff.SecureCookie}
		check := cmp.Or(cfg.Staff.SessionCheck, defaultSessionCheck)
		h.watch = func(ctx context.Context) { sessions.watch(ctx, hub, check) }
		r.Use(staffStreamWhileDraining(hub), sessions.loadAndSave)
		r.Method(http.MethodGet, "/login", handleStaffLoginForm(accts, sessions, log))
		r.Method(http.MethodPost, "/login", handleStaffLogin(accts, sessions, devices, newLoginLimits(), log))
		r.Method(http.MethodGet, "/session", handleStaffSession(sessions))
		r.With(requireStaffPage(sessions)).Method(http.MethodGet, "/", handleStaffBoard(store, sessions, log))
		r.With(requireStaffPage(sessions)).Method(http.MethodGet, "/orders/{token}", handleStaffOrder(store, sessions, log))
		r.With(requireStaffPage(sessions)).Method(http.MethodGet, "/devices", handleStaffDevices(accts, sessions, log))
		r.Group(func(r chi.Router) {
			r.Use(requireStaff(sessions, log))
			r.With(ownedBySession(sessions)).Method(http.MethodGet, "/events", handleStaffEvents(store, hub))
			r.Method(http.MethodGet, "/orders", handleStaffOrders(store, log))
			r.Method(http.MethodPost, "/logout", handleStaffLogout(sessions, hub))
			r.Method(http.MethodPost, "/devices/sign-out", handleStaffSignOutEverywhere(accts, sessions, hub))
			r.Method(http.MethodPost, "/orders/{token}/advance", handleStaffAdvance(store, sessions, log))
			r.Method(http.MethodPost, "/orders/{token}/cancel", handleStaffCancel(store, sessions, log))
		})
	})

	// Every state-changing request, from anyone, must come from this site.
	h.routes = http.NewCrossOriginProtection().Handler(r)
	return h
}
