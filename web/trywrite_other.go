//go:build !unix

package web

import (
	"errors"
	"net"
	"syscall"
)

// rawConn reports no descriptor: writes use a short deadline instead.
func rawConn(net.Conn) syscall.RawConn { return nil }

func writeNow(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }
