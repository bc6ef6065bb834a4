package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ordertracker/ordertracker/orders"
)

// dbMetricsMaxAge is how long the figures read from the database are
// reused: scrapes more frequent than this (several Prometheus servers, a
// person reloading /metrics) cost no query.
const dbMetricsMaxAge = 5 * time.Second

// newRegistry returns the registry that /metrics serves, with the process's
// own metrics, the listener's, the worker's backlog (read from the database,
// so any web process shows the whole system's), and, when a worker runs in
// this process, its transitions.
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
		}, func() float64 { return boolGauge(listener.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordertracker_listener_hears",
			Help: "1 while the listener's own probe notifications come back to it in time; " +
				"0 means events reach this process only through its periodic reads of the log (see /readyz).",
		}, func() float64 { return boolGauge(listener.Hears()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordertracker_listener_seconds_since_notification",
			Help: "Time since the listener last heard a notification, its own probes included.",
		}, func() float64 { return listener.SinceNotification().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordertracker_listener_safety_net_events_total",
			Help: "Events the listener found by reading the log on its own, with no notification to announce them: each reached this process late.",
		}, func() float64 { return float64(listener.SafetyNetEvents()) }),
		newDBCollector(store, listener, dbMetricsMaxAge),
	)
	if worker != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordertracker_worker_transitions_total",
			Help: "Moves made by the worker in this process.",
		}, func() float64 { return float64(worker.Transitions()) }))
	}
	return reg
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	dueDesc = prometheus.NewDesc("ordertracker_worker_due_orders",
		"Orders due to be moved on now and still waiting for a worker.", nil, nil)
	lagDesc = prometheus.NewDesc("ordertracker_worker_lag_seconds",
		"How late the most overdue order is (now minus its due time); 0 when none is due.", nil, nil)
	listenerLagDesc = prometheus.NewDesc("ordertracker_listener_lag_events",
		"Events in the log that the listener has not handed on yet (the head of the log minus the listener's position).", nil, nil)
	queueUsageDesc = prometheus.NewDesc("ordertracker_notification_queue_usage_ratio",
		"Fraction of the server's notification queue in use (pg_notification_queue_usage()); when it is full, every notifying commit fails.", nil, nil)
)

// dbCollector reports the figures that cost a query: the worker's backlog,
// the listener's lag and the notification queue's usage. It reads them at
// most once per maxAge, failures included, however often it is scraped.
type dbCollector struct {
	store    *orders.Store
	listener *orders.Listener
	maxAge   time.Duration

	mu     sync.Mutex
	readAt time.Time // zero before the first read
	last   dbFigures
	err    error
}

// dbFigures are one reading of the database.
type dbFigures struct {
	due        int
	lag        time.Duration
	behind     int64
	queueUsage float64
}

func newDBCollector(store *orders.Store, listener *orders.Listener, maxAge time.Duration) *dbCollector {
	return &dbCollector{store: store, listener: listener, maxAge: maxAge}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dueDesc
	ch <- lagDesc
	ch <- listenerLagDesc
	ch <- queueUsageDesc
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	f, err := c.figures()
	if err != nil {
		for _, d := range []*prometheus.Desc{dueDesc, lagDesc, listenerLagDesc, queueUsageDesc} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	ch <- prometheus.MustNewConstMetric(dueDesc, prometheus.GaugeValue, float64(f.due))
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, f.lag.Seconds())
	ch <- prometheus.MustNewConstMetric(listenerLagDesc, prometheus.GaugeValue, float64(f.behind))
	ch <- prometheus.MustNewConstMetric(queueUsageDesc, prometheus.GaugeValue, f.queueUsage)
}

// figures returns the latest reading, reading the database again if it is
// older than maxAge. Concurrent scrapes wait for one reading.
func (c *dbCollector) figures() (dbFigures, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < c.maxAge {
		return c.last, c.err
	}
	c.last, c.err = c.read()
	c.readAt = time.Now()
	return c.last, c.err
}

// read asks the database.
func (c *dbCollector) read() (dbFigures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var f dbFigures
	var err error
	if f.due, f.lag, err = c.store.Backlog(ctx); err != nil {
		return f, err
	}
	// The position first: the head read after it is at least as new, so
	// the difference is never below zero.
	position := c.listener.Position()
	head, err := c.store.Head(ctx)
	if err != nil {
		return f, fmt.Errorf("read the listener's lag: %w", err)
	}
	f.behind = max(head-position, 0)
	if f.queueUsage, err = c.store.NotificationQueueUsage(ctx); err != nil {
		return f, err
	}
	return f, nil
}
