package stream

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A stream is one client's event stream, from its subscription to its end.
//
// A fan-out walks every stream of a shard for every batch, and on a busy
// server each stream it reaches is out of the cache: what the walk reads,
// and the transport of a stream taken over from net/http, which lives
// inside it, come first, on the stream's first two cache lines (the size
// of a stream is a multiple of 128 bytes, so that they are, and fetched
// together), instead of spread over five lines of two objects.
type stream struct {
	// First line: what decides whether the stream is written to.
	ending   ending      // why it ends; 0 while it lives. Owned by the shard's writer
	hops     bool        // it gets a hop event after each write of live events
	tagged   bool        // it has a tag, and Stall may silence it
	flushing atomic.Bool // a flusher owns the writes; see mu
	// cursor belongs to the stream's handler until the hand-over, and to
	// the shard's writer from then on.
	cursor cursor
	out    transport // nil while the stream replays; owned by the shard's writer

	// Second line: what a write reads and sets.
	nextBeat time.Time // owned by the shard's writer
	direct   hijacked  // the transport of a stream taken over from net/http, which out points to

	hub    *Hub
	shard  *shard
	opened time.Time
	client string // who opened it, for MaxStreamsPerClient
	owner  string // whose it is, for EndOwner; "" for nobody's
	tag    string // the client's name for it, for Stall (demo.go); "" for none

	// Owned by the shard's writer.
	held     [][]*delivery // what reached the stream while it replayed
	overflow bool          // more than the hub's Buffer batches reached it while it replayed
	mark     *published
	all      int // index in shard.streams
	peer     int // index in shard.staff or shard.byToken[token] (one order)

	// Shared by the writer and the flusher. flushing is set by the writer
	// alone, and both set it under mu; the writer reads it without mu
	// first, so that a stream without a flusher, nearly every one, costs
	// no lock per batch.
	mu      sync.Mutex
	pending [][]byte // what it has yet to write
	queued  int      // batches queued behind the one it writes
	noticed time.Time
	closed  bool // the writer is done with it; the flusher closes it
	clean   bool // ... and ends the response cleanly

	_ [streamPad]byte
}

// An ending is why a stream ends.
type ending uint8

const (
	endFinished  ending = iota + 1 // its last event is out: the response ends cleanly
	endDrained                     // the process is draining: it ends cleanly, with a retry delay
	endGone                        // the client left, or its connection failed
	endSlow                        // the client fell behind
	endCancelled                   // its handler gave up before the hand-over
	endOwner                       // its owner's right to it ended (EndOwner): it ends cleanly
)

// clean reports whether a stream that ends this way ends its response
// cleanly, after what it has queued is written.
func (e ending) clean() bool { return e == endFinished || e == endDrained || e == endOwner }

// frame is the frame of d for this stream, whose cursor is already past it.
func (s *stream) frame(d *delivery) []byte {
	switch s.cursor.kind {
	case allOrders:
		return d.staffFrame()
	case oneOrder:
		return d.orderFrame()
	}
	return appendFrameWithID(nil, s.cursor.set.id(), d.orderFrame())
}

// freshFrames returns the frames of the events of batch that the stream
// has yet to send, moving its cursor past them, and when the first of them
// was heard of. It stops after an event that finishes the stream.
func (s *stream) freshFrames(batch []*delivery) (frames [][]byte, noticed time.Time) {
	for _, d := range batch {
		if !s.cursor.fresh(&d.event) {
			continue
		}
		if frames == nil {
			noticed = d.event.Noticed
		}
		frames = append(frames, s.frame(d))
		if s.cursor.finished() {
			break
		}
	}
	return frames, noticed
}

// enqueue hands b, the next bytes of the stream, to its flusher if one is
// at work, and reports whether one was; false means the caller writes.
// A stream whose flusher has the hub's Buffer batches queued already is
// too slow: enqueue reports it, and queues nothing.
func (s *stream) enqueue(b []byte, noticed time.Time) (queued, tooSlow bool) {
	if !s.flushing.Load() {
		return false, false // and none can start: only this goroutine starts one
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.flushing.Load() {
		return false, false
	}
	if s.queued >= s.hub.opts.Buffer {
		return true, true
	}
	s.pending = append(s.pending, b)
	s.queued++
	if s.noticed.IsZero() {
		s.noticed = noticed
	}
	return true, false
}

// flushFrom makes a flusher the owner of the stream's writes, starting with
// rest, what the socket would not take at once.
func (s *stream) flushFrom(rest []byte, noticed time.Time) {
	s.mu.Lock()
	s.flushing.Store(true)
	s.pending = append(s.pending[:0], rest)
	s.queued = 0
	s.noticed = noticed
	s.mu.Unlock()
	s.out.flushLater(s.flush)
}

// flush writes what is pending, waiting for the client up to the write
// timeout for each round, until nothing is: then the writer writes again
// by itself. A write that fails or times out ends the stream.
func (s *stream) flush() {
	for {
		s.mu.Lock()
		bufs := net.Buffers(s.pending)
		s.pending, s.queued = nil, 0
		noticed := s.noticed
		s.noticed = time.Time{}
		if len(bufs) == 0 {
			s.flushing.Store(false)
			closed, clean := s.closed, s.clean
			s.mu.Unlock()
			if closed {
				s.out.close(clean)
			}
			return
		}
		s.mu.Unlock()
		if err := s.out.writeWait(bufs, s.hub.opts.WriteTimeout); err != nil {
			s.out.close(false)
			why := endGone
			if isTimeout(err) {
				why = endSlow
			}
			s.shard.post(job{op: opEnd, stream: s, why: why})
			return // flushing stays set: nothing more is written
		}
		s.hub.metrics.wrote(s.shard.index, noticed, time.Now())
	}
}

// release is the writer letting go of a stream that has ended: it closes
// the response now, unless a flusher is still writing what a clean ending
// must get out first, in which case the flusher closes it when done.
func (s *stream) release() {
	if s.out == nil {
		return
	}
	clean := s.ending.clean()
	s.mu.Lock()
	s.closed, s.clean = true, clean
	wait := s.flushing.Load() && clean
	s.mu.Unlock()
	if !wait {
		s.out.close(clean)
	}
}

// streamPad rounds a stream up to a multiple of 128 bytes (see stream).
const streamPad = 24
