package web

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection with small socket buffers: the
// server's end, as a hijacked stream's, and the client's.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	small := func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		})
	}
	client, err = (&net.Dialer{Control: small}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := small("", "", raw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestAStreamThatFellBehindIsWrittenAgainOnceItCatchesUp fills a stream's
// socket so that a flusher takes over, lets the client catch up, waits out
// the flusher's write deadline, and writes again: the stream is written at
// once, as before it fell behind, and nothing is lost.
func TestAStreamThatFellBehindIsWrittenAgainOnceItCatchesUp(t *testing.T) {
	server, client := tcpPair(t)
	sh := NewHub(HubOptions{Logger: quiet}).shards[0]
	c := &sseConn{conn: server, raw: rawConn(server), heartbeat: time.Hour, writeTimeout: 100 * time.Millisecond}
	if c.raw == nil {
		t.Fatal("a TCP connection has no descriptor to write to")
	}

	big := chunk(bytes.Repeat([]byte("x"), 1<<20))
	if !sh.write(c, big, 1, time.Time{}) {
		t.Fatal("the first write failed")
	}
	c.mu.Lock()
	flushing := c.flushing
	c.mu.Unlock()
	if !flushing {
		t.Fatal("1 MiB fit the socket at once; the test needs it not to")
	}
	got := make([]byte, len(big))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the client read %d bytes (%v), not the chunk", len(got), err)
	}
	waitUntil(t, "the flusher is done", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.flushing
	})
	time.Sleep(2 * c.writeTimeout) // past the flusher's deadline

	small := chunk([]byte("data: after\n\n"))
	if !sh.write(c, small, 1, time.Time{}) || c.ended {
		t.Fatal("the stream was ended after it caught up")
	}
	got = make([]byte, len(small))
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("the client read %q (%v), want %q", got, err, small)
	}
}
