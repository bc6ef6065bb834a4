//go:build !unix

package stream

import (
	"errors"
	"net"
	"syscall"
)

// rawConn reports no descriptor: writes use a short deadline instead.
func rawConn(net.Conn) syscall.RawConn { return nil }

// writeNow is never called here, where rawConn gives no descriptor.
func writeNow(int, []byte) (int, error) { return 0, errors.ErrUnsupported }
