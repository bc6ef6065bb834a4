package stream

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ordertracker/ordertracker/orders"
)

// metrics are the hub's counts: every one is kept here, whatever the
// transport, and nothing outside the hub touches them.
type metrics struct {
	// sent counts events written to streams, replayed and live.
	sent prometheus.Counter
	// latency observes, once per batch per stream, the time from the
	// listener hearing of a batch to its bytes being handed to the
	// stream's connection.
	latency *shardedHistogram
	// duration observes how long each stream lasted, from its request to
	// its end.
	duration prometheus.Histogram
	dropped  prometheus.Counter
	refused  *prometheus.CounterVec
	// events counts the events published, by who caused them: every
	// process's hub sees every event, so this is the rate of the whole
	// system, the worker's moves included.
	events *prometheus.CounterVec
	// heard observes, per event, the time from the database logging it to
	// this process's listener hearing of it: the first hop of an event's
	// journey; latency is the second.
	heard prometheus.Histogram
	// replays counts the replay window's lookups, by whether the window
	// held what was asked (memory) or the log must be read (log).
	replays *prometheus.CounterVec
}

func newMetrics(shards int) *metrics {
	return &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordertracker_stream_events_sent_total",
			Help: "Events written to SSE streams, replayed and live.",
		}),
		latency: newShardedHistogram(shards, prometheus.HistogramOpts{
			Name:    "ordertracker_stream_send_latency_seconds",
			Help:    "Time from the listener hearing of a batch of events to a stream's connection taking its bytes, observed once per batch per stream.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordertracker_stream_duration_seconds",
			Help:    "How long SSE streams lasted, from their request to their end.",
			Buckets: []float64{.01, .1, 1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600},
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordertracker_streams_dropped_slow_total",
			Help: "Streams dropped because their client fell behind.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordertracker_streams_refused_total",
			Help: "Streams turned away with a 200 and a retry delay, by reason: busy (the process had MAX_STREAMS open), client (the client had MAX_STREAMS_PER_CLIENT open) or draining (the process was shutting down).",
		}, []string{"reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordertracker_events_total",
			Help: "Order events heard from the database, by who caused them.",
		}, []string{"actor"}),
		heard: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordertracker_event_heard_latency_seconds",
			Help:    "Time from the database logging an event (at the end of its statement, by the database's clock) to this process's listener hearing of it (by this process's clock).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordertracker_stream_replays_total",
			Help: "Replays of event streams, by where they were read: memory (the window of recent events held them all) or log (the database had to be read). A stream of several orders counts one per order.",
		}, []string{"from"}),
	}
}

// windowLookup counts a replay asked of the window.
func (m *metrics) windowLookup(held bool) {
	if held {
		m.replays.WithLabelValues("memory").Inc()
		return
	}
	m.replays.WithLabelValues("log").Inc()
}

// wrote observes the latency of a batch heard of at noticed, written to a
// stream of shard by now; noticed is zero for bytes that are no event heard
// live (a replay, a heartbeat).
func (m *metrics) wrote(shard int, noticed, now time.Time) {
	if !noticed.IsZero() {
		m.latency.parts[shard].Observe(now.Sub(noticed).Seconds())
	}
}

// count adds events to the per-actor counter, one Add per actor per batch,
// and observes how long each took to be heard.
func (m *metrics) count(events []orders.Event) {
	var by [3]int
	actors := [3]orders.Actor{orders.ByCustomer, orders.ByWorker, orders.ByStaff}
	for _, ev := range events {
		if !ev.Logged.IsZero() && !ev.Noticed.IsZero() {
			// Two clocks: one a little ahead of the other must not make
			// a hop take less than nothing.
			m.heard.Observe(max(ev.Noticed.Sub(ev.Logged), 0).Seconds())
		}
		for i, a := range actors {
			if ev.Actor == a {
				by[i]++
				break
			}
		}
	}
	for i, a := range actors {
		if by[i] > 0 {
			m.events.WithLabelValues(string(a)).Add(float64(by[i]))
		}
	}
}

// Collectors are the hub's metrics, for a Prometheus registry.
func (h *Hub) Collectors() []prometheus.Collector {
	m := h.metrics
	return []prometheus.Collector{
		m.sent, m.latency, m.duration, m.dropped, m.refused, m.events, m.replays, m.heard,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordertracker_streams_open",
			Help: "SSE streams open in this process, counting those still replaying.",
		}, func() float64 { return float64(h.Streams()) }),
	}
}

// A shardedHistogram is one histogram kept in parts, one per shard, so that
// the shards' writers, each on a core of its own, observe into memory of
// their own. One histogram for all of them has every observation of every
// writer contend for the same cache lines: in a fan-out, where a writer
// observes once per stream, that was about 2 % of the server's CPU. It is
// collected as one histogram, the sum of its parts.
type shardedHistogram struct {
	desc    *prometheus.Desc
	buckets []float64
	parts   []prometheus.Histogram
}

func newShardedHistogram(shards int, opts prometheus.HistogramOpts) *shardedHistogram {
	h := &shardedHistogram{
		desc:    prometheus.NewDesc(opts.Name, opts.Help, nil, nil),
		buckets: opts.Buckets,
		parts:   make([]prometheus.Histogram, shards),
	}
	for i := range h.parts {
		h.parts[i] = prometheus.NewHistogram(opts)
	}
	return h
}

func (h *shardedHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *shardedHistogram) Collect(ch chan<- prometheus.Metric) {
	var count uint64
	var sum float64
	buckets := make(map[float64]uint64, len(h.buckets))
	for _, b := range h.buckets {
		buckets[b] = 0
	}
	for _, p := range h.parts {
		var m dto.Metric
		if err := p.Write(&m); err != nil {
			ch <- prometheus.NewInvalidMetric(h.desc, err)
			return
		}
		count += m.GetHistogram().GetSampleCount()
		sum += m.GetHistogram().GetSampleSum()
		for _, b := range m.GetHistogram().GetBucket() {
			buckets[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
}
