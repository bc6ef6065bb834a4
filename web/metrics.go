package web

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics count requests by route pattern (never the raw path, which
// holds customers' tokens) and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordertracker_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordertracker_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests by route pattern, event streams excepted (see ordertracker_stream_duration_seconds).",
			Buckets: []float64{.00025, .0005, .00075, .001, .0015, .002, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 60, 600},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe counts a request, and, unless it was an event stream, how long
// it took: a stream lasts as long as its client stays, which says nothing
// of how fast the server answers, and the stream engine times streams
// itself, to their end.
func (m *httpMetrics) observe(route, method string, status int, seconds float64, stream bool) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	if !stream {
		m.duration.WithLabelValues(route).Observe(seconds)
	}
}

// handleMetrics serves the registry in the Prometheus text format.
func handleMetrics(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
