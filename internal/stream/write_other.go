//go:build !unix

package stream

import (
	"errors"
	"net"
	"os"
)

// ownSocket gives no descriptor: writes use a short deadline instead.
func ownSocket(net.Conn) (*os.File, int, bool) { return nil, -1, false }

// writeNow is never called here, where ownSocket gives no descriptor.
func writeNow(int, []byte) (int, error) { return 0, errors.ErrUnsupported }
