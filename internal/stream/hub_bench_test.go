package stream

import (
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// discard is a transport that takes every write at once and counts it, so
// that the benchmarks measure the hub and not the kernel: a socket write on
// loopback costs about as much again per stream (see BENCHMARKS.md for the
// whole path, measured by the load generator).
type discard struct{ writes *atomic.Int64 }

func (d discard) form(p payload) []byte { return p.chunk }
func (d discard) writeNow(b []byte) (int, error) {
	d.writes.Add(1)
	return len(b), nil
}
func (d discard) flushLater(flush func())                    { go flush() }
func (d discard) writeWait(net.Buffers, time.Duration) error { return nil }
func (d discard) close(bool)                                 {}

// attach opens a stream with no replay on a transport of the test's.
func (h *Hub) attach(sub Subscription, out transport) {
	s, _ := h.subscribe(sub, "bench")
	s.shard.post(job{op: opHandOver, stream: s, out: out})
}

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

// BenchmarkPublish publishes one event to n live streams of all orders and
// waits until every stream has been written: the cost of one status change
// on /staff/events, per change and per stream, without the sockets. With
// hops, every stream asks for a hop event after each write (?hops), which
// makes its bytes its own.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 1000, 20000} {
		for _, hops := range []bool{false, true} {
			name := fmt.Sprintf("streams=%d", n)
			if hops {
				name += "/hops"
			}
			b.Run(name, func(b *testing.B) {
				h := NewHub(Options{Heartbeat: time.Hour, Logger: quiet})
				var writes atomic.Int64
				for range n {
					sub := AllOrders(0)
					if hops {
						sub = sub.WithHops()
					}
					h.attach(sub, discard{&writes})
				}
				b.Cleanup(func() { h.Drain(b.Context(), 0) })
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
		}
	}
}

// BenchmarkPublishBatch publishes the worker's batch of 500 moves to 10
// streams of all orders: one payload of 500 frames, encoded once, written
// once per stream.
func BenchmarkPublishBatch(b *testing.B) {
	const streams, batch = 10, 500
	h := NewHub(Options{Heartbeat: time.Hour, Logger: quiet})
	var writes atomic.Int64
	for range streams {
		h.attach(AllOrders(0), discard{&writes})
	}
	b.Cleanup(func() { h.Drain(b.Context(), 0) })
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
		dst = AppendStaffFrame(dst[:0], ev)
	}
	b.SetBytes(int64(len(dst)))
}

// BenchmarkEncodeOrderEvent is the same for a customer's stream.
func BenchmarkEncodeOrderEvent(b *testing.B) {
	ev := benchEvent(1234567)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendOrderFrame(dst[:0], ev)
	}
	b.SetBytes(int64(len(dst)))
}
