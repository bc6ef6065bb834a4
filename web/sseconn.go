package web

import (
	"github.com/ordertracker/ordertracker/internal/sse"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// An sseConn is an attached stream: a hijacked HTTP/1.1 connection whose
// response is chunked and whose headers are out.
type sseConn struct {
	conn         net.Conn
	raw          syscall.RawConn // conn's descriptor, for writes that do not wait; nil if none
	srv          *http.Server
	orderID      int64 // 0: every order
	heartbeat    time.Duration
	writeTimeout time.Duration

	// Owned by the shard's writer.
	last     int64 // id of the last event sent: the order's seq, or the position
	nextBeat time.Time
	ended    bool
	drain    bool // it ended with its order's terminal event, which must get out
	all      int  // index in shard.conns
	kind     int  // index in shard.staff or shard.orders[orderID]

	mu       sync.Mutex
	flushing bool     // a flusher owns the writes
	pending  [][]byte // what it has yet to write
	queued   int      // batches queued behind the one it writes
	noticed  time.Time
	closed   bool // the writer is done with it; the flusher closes it

	unwatch func() // stops the process's hang-up watcher; nil if watch runs instead
	rbuf    [16]byte
}

// watch reads the connection, on which a client sends nothing after its
// request, until it ends: that is how a client that goes is noticed at
// once, without waiting for a write to fail. It serves where the process's
// hang-up watcher cannot (see watchHangup).
func (c *sseConn) watch(sh *shard) {
	for {
		if _, err := c.conn.Read(c.rbuf[:]); err != nil {
			sh.postLocked(item{gone: c})
			return
		}
	}
}

// writeNow writes as much of b as the socket takes at once, and reports
// how much that was; an error means the connection has failed. It never
// waits, and where the descriptor can be reached it sets no deadline: a
// deadline is a runtime timer set and fired for every stream of every
// batch, about a tenth of the writer's time in the fan-out to 19,500.
func (c *sseConn) writeNow(b []byte) (int, error) {
	if c.raw != nil {
		return writeNow(c.raw, b)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(quickWrite))
	n, err := c.conn.Write(b)
	if isTimeout(err) {
		err = nil
	}
	return n, err
}

// flush writes what the socket would not take at once, waiting up to the
// write timeout for each write, until nothing is pending.
func (c *sseConn) flush(sh *shard) {
	for {
		c.mu.Lock()
		bufs := net.Buffers(c.pending)
		c.pending, c.queued = nil, 0
		noticed := c.noticed
		c.noticed = time.Time{}
		if len(bufs) == 0 {
			// The writer writes again, with no deadline of its own.
			_ = c.conn.SetWriteDeadline(time.Time{})
			c.flushing = false
			closed := c.closed
			c.mu.Unlock()
			if closed {
				c.conn.Close()
			}
			return
		}
		c.mu.Unlock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		if _, err := bufs.WriteTo(c.conn); err != nil {
			c.conn.Close()
			if isTimeout(err) {
				sh.postLocked(item{slow: c})
			} else {
				sh.postLocked(item{gone: c})
			}
			c.mu.Lock()
			c.pending = nil
			c.mu.Unlock()
			return // flushing stays set: nothing more is written
		}
		if !noticed.IsZero() {
			sh.hub.latency.Observe(time.Since(noticed).Seconds())
		}
	}
}

// Chunks of the chunked transfer coding that the attached streams' responses
// use: each write is one chunk.
var (
	heartbeatChunk = chunk(sse.AppendComment(nil, "heartbeat"))
	endChunk       = []byte("0\r\n\r\n")
)

// chunk wraps frames as one chunk.
func chunk(frames ...[]byte) []byte {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	dst := make([]byte, 0, n+16)
	dst = strconv.AppendInt(dst, int64(n), 16)
	dst = append(dst, "\r\n"...)
	for _, f := range frames {
		dst = append(dst, f...)
	}
	return append(dst, "\r\n"...)
}

// staffChunk is the chunk of the staff frames of batch.
func staffChunk(batch []*delivery) []byte {
	frames := make([][]byte, len(batch))
	for i, d := range batch {
		frames[i] = d.staffFrame()
	}
	return chunk(frames...)
}

// orderChunk is the chunk of the order frames of part, all of one order, up
// to and with its terminal event, after which it ends the response.
func orderChunk(part []*delivery) (out []byte, frames int, final bool) {
	list := make([][]byte, 0, len(part))
	for _, d := range part {
		list = append(list, d.orderFrame())
		if d.event.Status.Terminal() {
			final = true
			break
		}
	}
	out = chunk(list...)
	if final {
		out = append(out, endChunk...)
	}
	return out, len(list), final
}
