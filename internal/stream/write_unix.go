//go:build unix

package stream

import (
	"net"
	"syscall"
)

// rawConn is the descriptor of conn, for writes that must not wait, or nil
// where conn has none; fd is its number, or -1.
func rawConn(conn net.Conn) (raw syscall.RawConn, fd int) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, -1
	}
	fd = -1
	if err := raw.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return nil, -1
	}
	return raw, fd
}

// writeNow writes as much of b to the socket fd as it takes at once,
// without waiting for room: one write(2) on the non-blocking descriptor. A
// socket with no room is not an error; it reports how much went.
//
// It writes to the descriptor itself, around Go's poller, whose lock, reset
// of the descriptor's readiness and closure cost the writer a tenth of its
// own time in a fan-out to 19,500 streams. That is safe because a stream's
// connection is written and closed by one goroutine at a time, which is
// never in writeNow when the connection closes: the shard's writer, which
// writes nothing to a stream it has let go, or the stream's flusher, which
// owns every write from the moment it starts (see stream.flush).
func writeNow(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Write(fd, b[n:])
		switch err {
		case nil:
			n += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, err
		}
	}
	return n, nil
}
