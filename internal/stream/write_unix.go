//go:build unix

package stream

import (
	"net"
	"os"
	"syscall"
)

// ownSocket gives a stream a descriptor of conn's socket that nothing else
// in the process knows: a duplicate, as an *os.File on Go's poller, after
// which conn, the original, is closed. It reports false, and leaves conn
// as it is, where conn shares no socket (TLS) or the process has no
// descriptor to spare for the moment the two exist side by side.
//
// The shard's writer writes to the number itself, as the floor does,
// without a reference to take for every write: only the stream's
// transport closes it, and only once nothing will write to it again (see
// hijacked), so the number cannot pass to another socket, another
// client's, while the writer may use it. Whatever else closes the
// connection net/http handed over closes a descriptor that is gone
// already.
func ownSocket(conn net.Conn) (f *os.File, fd int, ok bool) {
	fc, ok := conn.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, -1, false
	}
	f, err := fc.File()
	if err != nil {
		return nil, -1, false
	}
	// Not f.Fd, which would make the descriptor block.
	raw, err := f.SyscallConn()
	if err == nil {
		err = raw.Control(func(d uintptr) { fd = int(d) })
	}
	if err != nil {
		f.Close()
		return nil, -1, false
	}
	conn.Close()
	return f, fd, true
}

// writeNow writes as much of b to the socket fd as it takes at once,
// without waiting for room: one write(2) on the non-blocking descriptor. A
// socket with no room is not an error; it reports how much went.
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
