// Package web is the HTTP side of the order tracker: pages, the JSON API,
// and the Server-Sent Events streams fed by the Hub.
package web

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordertracker/ordertracker/orders"
)

// Store is what the handlers need of orders.Store.
type Store interface {
	orderEvents
	staffEvents
	pageStore
	staffOrders
	Create(ctx context.Context, n orders.NewOrder) (orders.Order, error)
}

// Config is the web side's configuration.
type Config struct {
	Streams StreamConfig
	// Metrics is the registry that /metrics serves; the web side adds its
	// own collectors and the hub's. Nil means a registry of its own.
	Metrics *prometheus.Registry
	// Staff sets up the staff side; without a password it is off.
	Staff StaffConfig
}

// NewHandler returns the whole URL surface of the application.
func NewHandler(store Store, hub *Hub, checks []Check, cfg Config, log *slog.Logger) http.Handler {
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	cfg.Metrics.MustRegister(hub.Collectors()...)
	r := chi.NewRouter()
	r.Use(observeRequests(log, newHTTPMetrics(cfg.Metrics)), securityHeaders)

	// Operators.
	r.Method(http.MethodGet, "/healthz", handleHealthz())
	r.Method(http.MethodGet, "/readyz", handleReadyz(checks))
	r.Method(http.MethodGet, "/metrics", handleMetrics(cfg.Metrics))

	// Customers: pages, event streams, and the same in JSON.
	r.Method(http.MethodGet, "/", handleHomePage(log))
	r.Method(http.MethodPost, "/orders", handlePlaceOrder(store, log))
	r.Method(http.MethodGet, "/orders/{token}", handleTrackingPage(store, log))
	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(store, hub, cfg.Streams, log))
	r.Method(http.MethodGet, "/orders/events", handleMultiOrderEvents(store, hub, cfg.Streams, log))
	r.Method(http.MethodPost, "/api/orders", handleCreateOrderJSON(store, log))
	r.Method(http.MethodGet, "/api/orders/{token}", handleOrderJSON(store, log))

	r.Method(http.MethodGet, "/static/*", handleStatic(log))
	r.NotFound(handleNotFoundPage(log).ServeHTTP)

	// Staff: everything but the sign-in form needs a session.
	r.Route("/staff", func(r chi.Router) {
		if cfg.Staff.Password == "" {
			r.Handle("/", handleStaffOff(log))
			r.Handle("/*", handleStaffOff(log))
			return
		}
		sessions := newStaffSessions(cfg.Staff, cfg.Streams, log)
		r.Use(sessions.loadAndSave)
		r.Method(http.MethodGet, "/login", handleStaffLoginForm(sessions, log))
		r.Method(http.MethodPost, "/login", handleStaffLogin(cfg.Staff.Password, sessions, newLoginLimiter(), log))
		r.With(requireStaffPage(sessions)).Method(http.MethodGet, "/", handleStaffBoard(store, sessions, log))
		r.Group(func(r chi.Router) {
			r.Use(requireStaff(sessions, log))
			r.Method(http.MethodGet, "/events", handleStaffEvents(store, hub, cfg.Streams, log))
			r.Method(http.MethodGet, "/orders", handleStaffOrders(store, log))
			r.Method(http.MethodPost, "/logout", handleStaffLogout(sessions, log))
			r.Method(http.MethodPost, "/orders/{token}/advance", handleStaffAdvance(store, sessions, log))
			r.Method(http.MethodPost, "/orders/{token}/cancel", handleStaffCancel(store, sessions, log))
		})
	})

	// Every state-changing request, from anyone, must come from this site.
	return http.NewCrossOriginProtection().Handler(r)
}
