//go:build !linux

package stream

// watchHangup watches nothing where there is no epoll: streams then notice
// their clients leave with a goroutine each (see hijacked.watch).
func watchHangup(int, func()) (stop func(), ok bool) { return nil, false }
