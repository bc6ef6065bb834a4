//go:build unix

package stream

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/orders"
)

// TestAStreamWritesToADescriptorOfItsOwn: the shard's writer writes to a
// stream's socket by its number, around Go's poller, so the number must be
// the stream's alone. The connection net/http hands over is closed at
// once, and its number given to the next socket the process opens, which
// may be another client's: that socket must get none of the stream's
// bytes, whatever else closes the handed-over connection again, and the
// stream must go on.
//
// The test is not parallel: it must be the one that is given the freed
// number next.
func TestAStreamWritesToADescriptorOfItsOwn(t *testing.T) {
	hub := NewHub(Options{Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := &acceptedConns{Listener: ln, conns: make(chan net.Conn, 1)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.Serve(w, r, AllOrders(0), func(context.Context) ([]orders.Event, error) { return nil, nil })
	})}
	go srv.Serve(accepted)
	t.Cleanup(func() { srv.Close() })

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := ssetest.NewReader(resp.Body)
	handed := <-accepted.conns
	// An event that arrives has been written by the shard's writer: the
	// stream is live, and the handed-over connection closed.
	log := &testLog{}
	first := log.commit("A", orders.Received)
	hub.Publish([]orders.Event{first})
	if ev, err := nextEvent(events); err != nil || decode(t, ev).Position != first.Position {
		t.Fatalf("the first event: %v, %v", ev, err)
	}

	// A socket of someone else's is given the handed-over number, and
	// something closes the handed-over connection again.
	peer := takeDescriptor(t, accepted.fd)
	if err := handed.Close(); err == nil {
		t.Error("the connection net/http handed over was still open")
	}

	second := log.commit("A", orders.Cooking)
	hub.Publish([]orders.Event{second})
	if ev, err := nextEvent(events); err != nil || decode(t, ev).Position != second.Position {
		t.Fatalf("the second event: %v, %v", ev, err)
	}
	if got := readNow(t, peer); len(got) > 0 {
		t.Fatalf("the other socket got the stream's bytes: %q", got)
	}
	// The stream's end closes its own descriptor, not the other socket's.
	hub.Drain(context.Background(), 0)
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
	if got := readNow(t, peer); len(got) > 0 {
		t.Fatalf("the other socket got the stream's bytes: %q", got)
	}
	if _, err := syscall.Write(accepted.fd, []byte("x")); err != nil {
		t.Errorf("the other socket's descriptor was closed under it: %v", err)
	}
}

// acceptedConns hands the test the first connection the server accepts,
// and the number of its descriptor.
type acceptedConns struct {
	net.Listener
	conns chan net.Conn
	fd    int
}

func (l *acceptedConns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && len(l.conns) == 0 && l.fd == 0 {
		l.fd = descriptorOf(c)
		l.conns <- c
	}
	return c, err
}

// descriptorOf is the number of conn's descriptor, or -1.
func descriptorOf(conn net.Conn) int {
	fd := -1
	if raw, err := conn.(syscall.Conn).SyscallConn(); err == nil {
		raw.Control(func(d uintptr) { fd = int(d) })
	}
	return fd
}

// takeDescriptor opens socket pairs until one end is given the number fd,
// which has just been freed, and returns the other end; the process gives
// each new descriptor the lowest free number. Both ends are closed when
// the test ends.
func takeDescriptor(t *testing.T, fd int) (peer int) {
	t.Helper()
	var spare []int
	defer func() {
		for _, d := range spare {
			syscall.Close(d)
		}
	}()
	for range 10_000 {
		pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		syscall.CloseOnExec(pair[0])
		syscall.CloseOnExec(pair[1])
		for i, d := range pair {
			if d == fd {
				peer = pair[1-i]
				if err := syscall.SetNonblock(peer, true); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { syscall.Close(pair[0]); syscall.Close(pair[1]) })
				return peer
			}
		}
		spare = append(spare, pair[:]...)
		if pair[0] > fd && pair[1] > fd {
			t.Fatalf("descriptor %d went to another part of the process", fd)
		}
	}
	t.Fatalf("descriptor %d was never given out again", fd)
	return -1
}

// readNow reads what the socket fd has for reading now.
func readNow(t *testing.T, fd int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return got
		case err != nil:
			t.Fatalf("read the other socket: %v", err)
		case n == 0:
			return got
		}
		got = append(got, buf[:n]...)
	}
}
