package loadgen

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// This file is the plain hub: the event server most Go code that sends
// Server-Sent Events is, built on net/http alone, and what the order
// tracker's first design was. Every stream is a handler goroutine that
// net/http keeps, with its connection's buffers, reading a channel of its
// own; the listener's handler encodes each batch once and offers it to
// every channel, and each goroutine writes what its stream lacks through
// the response and flushes it. -plain starts it, as "loadgen plain", in
// place of the web process, for a fan-out run beside the web process and
// the floor in the same session.
//
// Like the floor it speaks only enough of the web process's protocol for
// the load generator, sends the events after each stream's Last-Event-ID
// as they happen (no replay of older ones) and no heartbeats, and hears of
// events through the product's listener and frame encoder. A stream whose
// channel is full misses the batch, and the miss is counted as a dropped
// write.

// runPlain runs the plain hub on addr over the database at databaseURL
// until ctx is done.
func runPlain(ctx context.Context, databaseURL, addr string, stderr io.Writer) error {
	return runBaseline(ctx, "plain", &plain{streams: make(map[*plainStream]struct{})}, databaseURL, addr, stderr)
}

// plainBuffer is how many batches a stream of the plain hub may have
// waiting for its goroutine.
const plainBuffer = 16

type plain struct {
	mu      sync.Mutex
	streams map[*plainStream]struct{}
	missed  atomic.Int64
}

type plainStream struct {
	batches chan *plainBatch
}

// A plainBatch is a batch encoded once for every stream.
type plainBatch struct {
	events []orders.Event
	frames []byte // every event's frame, back to back
	starts []int  // where each event's frame begins in frames
}

// after is the frames of the events after position last.
func (b *plainBatch) after(last int64) []byte {
	i, _ := slices.BinarySearchFunc(b.events, last+1, func(ev orders.Event, p int64) int { return cmp.Compare(ev.Position, p) })
	if i == len(b.events) {
		return nil
	}
	return b.frames[b.starts[i]:]
}

func (p *plain) dropped() int64 { return p.missed.Load() }

func (p *plain) attach(w http.ResponseWriter, r *http.Request) {
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	s := &plainStream{batches: make(chan *plainBatch, plainBuffer)}
	// The stream joins before its headers go out: once a client has them,
	// no event may pass its stream by.
	p.mu.Lock()
	p.streams[s] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.streams, s)
		p.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-s.batches:
			frames := b.after(last)
			if frames == nil {
				continue
			}
			last = b.events[len(b.events)-1].Position
			if _, err := w.Write(frames); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// write offers a batch to every stream, without waiting for any.
func (p *plain) write(events []orders.Event) {
	b := &plainBatch{events: events, starts: make([]int, len(events))}
	for i, ev := range events {
		b.starts[i] = len(b.frames)
		b.frames = stream.AppendStaffFrame(b.frames, ev)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.streams {
		select {
		case s.batches <- b:
		default:
			p.missed.Add(1)
		}
	}
}
