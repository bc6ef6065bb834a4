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

// writeNow writes as much of b to the socket as it takes at once, without
// waiting for room: one write(2) on the non-blocking descriptor. A socket
// with no room is not an error; it reports how much went.
func writeNow(raw syscall.RawConn, b []byte) (int, error) {
	n := 0
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					werr = err
				}
				break
			}
			n += m
		}
		return true // never wait for the socket to become writable
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
