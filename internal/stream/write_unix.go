//go:build unix

package stream

import (
	"net"
	"syscall"
)

// rawConn is the descriptor of conn, for writes that must not wait, or nil
// where conn has none.
func rawConn(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeNow writes as much of b to the socket fd as it takes at once,
// without waiting for room: one write(2) on the non-blocking descriptor. A
// socket with no room is not an error; it reports how much went. It is
// called inside RawConn.Control (see rawWriter), never with a bare number.
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
