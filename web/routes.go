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
	Create(ctx context.Context, n orders.NewOrder) (orders.Order, error)
}

// Config is the web side's configuration.
type Config struct {
	Streams StreamConfig
	// Metrics is the registry that /metrics serves; the web side adds its
	// own collectors and the hub's. Nil means a registry of its own.
	Metrics *prometheus.Registry
}

// NewHandler returns the whole URL surface of the application.
func NewHandler(store Store, hub *Hub, checks []Check, cfg Config, log *slog.Logger) http.Handler {
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	cfg.Metrics.MustRegister(hub.Collectors()...)
	r := chi.NewRouter()
	r.Use(observeRequests(log, newHTTPMetrics(cfg.Metrics)), securityHeaders)

	r.Method(http.MethodGet, "/healthz", handleHealthz())
	r.Method(http.MethodGet, "/readyz", handleReadyz(checks))
	r.Method(http.MethodGet, "/metrics", handleMetrics(cfg.Metrics))

	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(store, hub, cfg.Streams, log))
	r.Method(http.MethodPost, "/api/orders", handleCreateOrderJSON(store, log))
	r.Method(http.MethodGet, "/api/orders/{token}", handleOrderJSON(store, log))

	r.Route("/staff", func(r chi.Router) {
		r.Use(requireStaff)
		r.Method(http.MethodGet, "/events", handleStaffEvents(store, hub, cfg.Streams, log))
	})

	// Every state-changing request, from anyone, must come from this site.
	return http.NewCrossOriginProtection().Handler(r)
}
