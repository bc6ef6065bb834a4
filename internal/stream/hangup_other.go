//go:build !linux

package stream

import "syscall"

// watchHangup watches nothing where there is no epoll: streams then notice
// their clients leave with a goroutine each (see sseConn.watch).
func watchHangup(syscall.RawConn, func()) (stop func(), ok bool) { return nil, false }
