//go:build unix

package stream

import (
	"context"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/orders"
)

// TestAConnectionClosedUnderTheHubIsNeverWrittenToAgain: the shard's writer
// writes to a stream's socket around Go's poller. If something other than
// the hub closes the connection, the number of its descriptor is free for
// the next socket the process opens, which may be another client's. The
// next write must fail and end the stream, and reach no one.
//
// The test is not parallel: it closes a descriptor and must be the one
// that is given its number next.
func TestAConnectionClosedUnderTheHubIsNeverWrittenToAgain(t *testing.T) {
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
	conn := <-accepted.conns
	// An event that arrives has been written by the shard's writer: the
	// stream is live, on its own socket.
	log := &testLog{}
	first := log.commit("A", orders.Received)
	hub.Publish([]orders.Event{first})
	if ev, err := nextEvent(events); err != nil || decode(t, ev).Position != first.Position {
		t.Fatalf("the first event: %v, %v", ev, err)
	}

	// Something closes the connection, and a socket of someone else's is
	// given its number.
	fd := descriptor(t, conn)
	conn.Close()
	peer := takeDescriptor(t, fd)

	hub.Publish([]orders.Event{log.commit("A", orders.Cooking)})
	var got []byte
	waitFor(t, "the stream ends, or its bytes reach the other socket", func() bool {
		got = append(got, readNow(t, peer)...)
		return hub.Streams() == 0 || len(got) > 0
	})
	if len(got) > 0 {
		t.Fatalf("the other socket got the stream's bytes: %q", got)
	}
	// The hub's own close of the connection must not close the
	// descriptor, which is the other socket's now.
	if got := readNow(t, peer); len(got) > 0 {
		t.Fatalf("the other socket got the stream's bytes: %q", got)
	}
	if _, err := syscall.Write(fd, []byte("x")); err != nil {
		t.Errorf("the other socket's descriptor was closed under it: %v", err)
	}
}

// acceptedConns hands the test each connection the server accepts.
type acceptedConns struct {
	net.Listener
	conns chan net.Conn
}

func (l *acceptedConns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.conns <- c:
		default:
		}
	}
	return c, err
}

func descriptor(t *testing.T, conn net.Conn) int {
	t.Helper()
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := raw.Control(func(d uintptr) { fd = int(d) }); err != nil {
		t.Fatal(err)
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

// TestAWriteToASocketAllocatesNothing: the shard's writer writes to every
// stream of a fan-out, and the function it hands RawConn.Control is made
// once.
func TestAWriteToASocketAllocatesNothing(t *testing.T) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pair[1])
	if err := syscall.SetNonblock(pair[1], true); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(pair[0]), "socket")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := rawConn(conn)
	if raw == nil {
		t.Fatal("no descriptor for a socket")
	}
	w := newRawWriter()
	msg := []byte("x")
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := w.write(raw, msg); n != 1 || err != nil {
			t.Fatalf("write = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("a write allocates %v times, want 0", allocs)
	}
}
