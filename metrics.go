package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ordertracker/ordertracker/orders"
)

// newRegistry returns the registry that /metrics serves, with the process's
// own metrics, the listener's, the worker's backlog (read from the database
// at each scrape, so any web process shows the whole system's), and, when a
// worker runs in this process, its transitions.
func newRegistry(store *orders.Store, listener *orders.Listener, worker *orders.Worker) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordertracker_listener_reconnects_total",
			Help: "Times the LISTEN connection was lost and made again.",
		}, func() float64 { return float64(listener.Reconnects()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordertracker_listener_connected",
			Help: "1 while the LISTEN connection is up.",
		}, func() float64 {
			if listener.Connected() {
				return 1
			}
			return 0
		}),
		backlogCollector{store},
	)
	if worker != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordertracker_worker_transitions_total",
			Help: "Moves made by the worker in this process.",
		}, func() float64 { return float64(worker.Transitions()) }))
	}
	return reg
}

// backlogCollector reports the worker's backlog with one query per scrape.
type backlogCollector struct{ store *orders.Store }

var (
	dueDesc = prometheus.NewDesc("ordertracker_worker_due_orders",
		"Orders due to be moved on now and still waiting for a worker.", nil, nil)
	lagDesc = prometheus.NewDesc("ordertracker_worker_lag_seconds",
		"How late the most overdue order is (now minus its due time); 0 when none is due.", nil, nil)
)

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dueDesc
	ch <- lagDesc
}

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	due, lag, err := c.store.Backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(dueDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(dueDesc, prometheus.GaugeValue, float64(due))
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag.Seconds())
}
