package web

import (
	"fmt"
	"github.com/ordertracker/ordertracker/internal/stream"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// discardConn is a connection that takes every write at once and counts
// it, so that the benchmarks measure the hub and not the kernel: a socket
// write on loopback costs about as much again per stream (see
// BENCHMARKS.md for the whole path, measured by the load generator).
type discardConn struct {
	net.Conn // nil: only the methods below are called
	writes   *atomic.Int64
	closed   chan struct{}
	once     sync.Once
}

func newDiscardConn(writes *atomic.Int64) *discardConn {
	return &discardConn{writes: writes, closed: make(chan struct{})}
}

func (c *discardConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return len(p), nil
}

func (c *discardConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, io.EOF
}

func (c *discardConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *discardConn) SetWriteDeadline(time.Time) error { return nil }

// benchEvent is a typical event: an order of a few items moved by the
// worker.
func benchEvent(position int64) orders.Event {
	return orders.Event{
		Position: position, OrderID: 42, Token: "Q3VN8KR2PXWL0AZT5YHCJDMB4E", Seq: 3,
		Status: orders.OutForDelivery, Actor: orders.ByWorker, At: time.Date(2025, 11, 26, 4, 58, 0, 0, time.UTC),
		CustomerName: "Mia Rossi",
		Items: []orders.Item{
			{MenuID: "margherita", Name: "Margherita", PriceCents: 950, Quantity: 2},
			{MenuID: "tiramisu", Name: "Tiramisu", PriceCents: 550, Quantity: 1},
		},
		TotalCents: 2450, Noticed: time.Now(),
	}
}

// BenchmarkPublish publishes one event to n streams of all orders and waits
// until every stream has been written: the cost of one status change on
// /staff/events, per change and per stream, without the sockets.
//
// "attached" streams are the hijacked HTTP/1.1 streams the shard writers
// write; "channel" streams are subscriptions read by a goroutine each (the
// path of HTTP/2 and of streams of several orders), for which the benchmark
// stops at the hand-off.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 1000, 20000} {
		b.Run(fmt.Sprintf("attached/streams=%d", n), func(b *testing.B) {
			h := NewHub(HubOptions{Logger: quiet})
			var writes atomic.Int64
			srv := &http.Server{}
			cfg := StreamConfig{Heartbeat: time.Hour}.withDefaults()
			conns := make([]*discardConn, n)
			for i := range conns {
				sub, _ := h.Subscribe(0)
				conns[i] = newDiscardConn(&writes)
				h.attach(sub, conns[i], srv, 0, cfg)
			}
			b.Cleanup(func() {
				for _, c := range conns {
					c.Close()
				}
			})
			var position int64
			b.ReportAllocs()
			for b.Loop() {
				position++
				want := writes.Load() + int64(n)
				h.Publish([]orders.Event{benchEvent(position)})
				for writes.Load() < want {
					runtime.Gosched()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/stream")
		})
		b.Run(fmt.Sprintf("channel/streams=%d", n), func(b *testing.B) {
			h := NewHub(HubOptions{Logger: quiet, Buffer: 1 << 20 / max(n, 1)})
			subs := make([]*subscription, n)
			for i := range subs {
				subs[i], _ = h.Subscribe(0)
			}
			var position int64
			b.ReportAllocs()
			for b.Loop() {
				position++
				h.Publish([]orders.Event{benchEvent(position)})
				if position%int64(h.buffer) == 0 {
					for _, s := range subs {
						for len(s.c) > 0 {
							<-s.c
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/stream")
		})
	}
}

// BenchmarkPublishBatch publishes the worker's batch of 500 moves to 10
// streams of all orders: one chunk of 500 frames, encoded once, written
// once per stream.
func BenchmarkPublishBatch(b *testing.B) {
	const streams, batch = 10, 500
	h := NewHub(HubOptions{Logger: quiet})
	var writes atomic.Int64
	srv := &http.Server{}
	cfg := StreamConfig{Heartbeat: time.Hour}.withDefaults()
	for range streams {
		sub, _ := h.Subscribe(0)
		c := newDiscardConn(&writes)
		h.attach(sub, c, srv, 0, cfg)
		b.Cleanup(func() { c.Close() })
	}
	var position int64
	events := make([]orders.Event, batch)
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			position++
			events[i] = benchEvent(position)
		}
		want := writes.Load() + streams
		h.Publish(events)
		for writes.Load() < want {
			runtime.Gosched()
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEncodeStaffEvent is the encoding of one event for streams of all
// orders: JSON, then the SSE frame. The hub does it once per event.
func BenchmarkEncodeStaffEvent(b *testing.B) {
	ev := benchEvent(1234567)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = stream.AppendStaffFrame(dst[:0], ev)
	}
	b.SetBytes(int64(len(dst)))
}

// BenchmarkEncodeOrderEvent is the same for a customer's stream.
func BenchmarkEncodeOrderEvent(b *testing.B) {
	ev := benchEvent(1234567)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = stream.AppendOrderFrame(dst[:0], ev)
	}
	b.SetBytes(int64(len(dst)))
}
