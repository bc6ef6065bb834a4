package stream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// A payload is frames to send, encoded once however many streams send
// them, in both of the forms the transports write: an HTTP/1.1 connection
// taken over from net/http writes the frames as one chunk of the chunked
// transfer coding, everything else writes the frames alone.
type payload struct {
	chunk []byte // "<size in hex>\r\n<frames>\r\n"
	head  int    // where the frames start in chunk
}

// newPayload joins frames into a payload.
func newPayload(frames ...[]byte) payload {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	b := make([]byte, 0, n+20)
	b = strconv.AppendInt(b, int64(n), 16)
	b = append(b, "\r\n"...)
	head := len(b)
	for _, f := range frames {
		b = append(b, f...)
	}
	return payload{chunk: append(b, "\r\n"...), head: head}
}

// frames is the payload without the chunked coding.
func (p payload) frames() []byte { return p.chunk[p.head : len(p.chunk)-2] }

// lastChunk ends a response in the chunked transfer coding.
var lastChunk = []byte("0\r\n\r\n")

// A transport carries one stream's bytes to its client. The shard's writer
// calls form and writeNow; the stream's flusher calls writeWait; either may
// call close, once the stream is over.
type transport interface {
	// form is p as this transport writes it.
	form(p payload) []byte
	// writeNow writes as much of b as the connection takes without
	// waiting, and reports how much that was. An error means the client
	// has gone.
	writeNow(b []byte) (int, error)
	// flushLater runs flush, now or soon, on a goroutine that may wait for
	// the client: what writeNow did not write is written there.
	flushLater(flush func())
	// writeWait writes all of bufs, waiting for the client at most timeout.
	writeWait(bufs net.Buffers, timeout time.Duration) error
	// close ends the response: cleanly, so that the client sees a complete
	// response, or abruptly.
	close(clean bool)
}

// A hijacked transport is an HTTP/1 connection taken over from net/http
// once the stream's headers and replay are out: no goroutine of net/http's
// and none of its buffers stay with it, and the shard's writer writes each
// batch with one write(2) that never waits, to a descriptor that is the
// stream's alone (ownSocket).
//
// Nothing writes to that descriptor once it is closed, and only close
// closes it: the shard's writer closes a stream it is done with, and
// writes to it no more; a flusher closes one only while it owns the
// writes, which the writer then leaves to it (see stream.enqueue) for good.
//
// What a write reads comes first (see stream).
type hijacked struct {
	fd      int    // the stream's own descriptor of the socket, written to around Go's poller; -1 where there is none
	chunked bool   // HTTP/1.1; HTTP/1.0 has no chunked coding and ends the body by closing
	conn    socket // the file of fd; where there is none, the connection net/http handed over
	unwatch func() // stops the hang-up watcher; nil if a goroutine watches instead
	once    sync.Once
}

// A socket is what a hijacked transport writes through when it must wait
// for the client, and what it closes: an *os.File or a net.Conn.
type socket interface {
	io.ReadWriteCloser
	SetWriteDeadline(time.Time) error
}

// take makes t the transport of conn, with a descriptor of its own where
// it can have one.
func (t *hijacked) take(conn net.Conn, chunked bool) {
	*t = hijacked{fd: -1, chunked: chunked, conn: conn}
	if f, fd, ok := ownSocket(conn); ok {
		t.fd, t.conn = fd, f
	}
}

func (t *hijacked) form(p payload) []byte {
	if t.chunked {
		return p.chunk
	}
	return p.frames()
}

// writeNow sets no deadline where it has a descriptor: a deadline is a
// runtime timer set and fired for every stream of every batch, about a
// tenth of the writer's time in a fan-out to 19,500 streams, and Go's
// poller would take its lock and reset the descriptor's readiness besides.
func (t *hijacked) writeNow(b []byte) (int, error) {
	if t.fd >= 0 {
		return writeNow(t.fd, b)
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(quickWrite))
	n, err := t.conn.Write(b)
	if isTimeout(err) {
		err = nil
	}
	return n, err
}

func (t *hijacked) flushLater(flush func()) { go flush() }

// writeWait clears its deadline when it is done: a raw write honours the
// connection's deadline too, and would fail once a stale one has passed.
func (t *hijacked) writeWait(bufs net.Buffers, timeout time.Duration) error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := bufs.WriteTo(t.conn); err != nil {
		return err
	}
	return t.conn.SetWriteDeadline(time.Time{})
}

func (t *hijacked) close(clean bool) {
	t.once.Do(func() {
		if t.unwatch != nil {
			t.unwatch()
		}
		if clean && t.chunked {
			t.endChunks()
		}
		t.conn.Close()
	})
}

// endChunks writes the last chunk, as much of it as the socket takes at
// once: a client with no room for five bytes sees its response cut and
// comes back, as after any failure. Where there is a descriptor this is
// one non-blocking write and cannot fail for want of time: a deadline as
// short as a writer can afford passes before the write starts when the
// goroutine waits a millisecond for a core, and the clean end of a drained
// stream was lost that way on a busy machine.
func (t *hijacked) endChunks() {
	if t.fd >= 0 {
		_, _ = writeNow(t.fd, lastChunk)
		return
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(quickWrite))
	_, _ = t.conn.Write(lastChunk)
}

// watch tells the shard when the client hangs up: through the process's
// hang-up watcher where there is one, else with a goroutine that reads the
// connection, on which a client sends nothing after its request, until it
// ends.
func (t *hijacked) watch(gone func()) {
	if stop, ok := watchHangup(t.fd, gone); ok {
		t.unwatch = stop
		return
	}
	go func() {
		var buf [16]byte
		for {
			if _, err := t.conn.Read(buf[:]); err != nil {
				gone()
				return
			}
		}
	}()
}

// quickWrite is how long a write waits for a socket where no descriptor can
// be reached: long enough for the kernel to take what fits, short enough
// that a slow client costs the others little.
const quickWrite = time.Millisecond

// isTimeout reports whether err is a deadline's, from a net.Conn, an
// *os.File or an HTTP/2 response.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// A flushed transport is a response that stays with net/http: HTTP/2, where
// a connection carries many streams and cannot be taken over, or any
// response that cannot be hijacked. Its handler's goroutine stays with it
// and is its flusher: the shard's writer queues every batch (writeNow
// takes nothing) and wakes it, and it writes and flushes within the write
// timeout. So the same queue, the same limit on it and the same write
// timeout decide when a client is too slow, whatever the transport.
type flushed struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	flush func()        // the stream's flusher, set before the hand-over
	kick  chan struct{} // a flush is wanted
	done  chan struct{} // closed when the stream is over
	once  sync.Once
}

func newFlushed(w http.ResponseWriter) *flushed {
	return &flushed{w: w, rc: http.NewResponseController(w), kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (t *flushed) form(p payload) []byte        { return p.frames() }
func (t *flushed) writeNow([]byte) (int, error) { return 0, nil }
func (t *flushed) close(bool)                   { t.once.Do(func() { close(t.done) }) }

// flushLater wakes the handler's goroutine, which runs the stream's flusher.
func (t *flushed) flushLater(func()) {
	select {
	case t.kick <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (t *flushed) writeWait(bufs net.Buffers, timeout time.Duration) error {
	_ = t.rc.SetWriteDeadline(time.Now().Add(timeout))
	for _, b := range bufs {
		if _, err := t.w.Write(b); err != nil {
			return err
		}
	}
	if err := t.rc.Flush(); err != nil {
		return err
	}
	// On HTTP/2 a deadline that passes resets the stream even while
	// nothing is being written.
	_ = t.rc.SetWriteDeadline(time.Time{})
	return nil
}

// serve is the handler's goroutine from the hand-over on: it flushes when
// asked, until the stream is over or the client leaves (then it tells the
// shard through gone). The handler returns when serve does, which ends the
// response.
func (t *flushed) serve(ctx context.Context, gone func()) {
	for {
		select {
		case <-t.kick:
			t.flush()
		case <-t.done:
			return
		case <-ctx.Done():
			gone()
			return
		}
	}
}
