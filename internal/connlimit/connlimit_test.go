package connlimit

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/clientaddr"
)

// server is an http.Server on a Listener with opts, wired as the program
// wires it, answering every request with "ok" and hijacking /hijack.
type server struct {
	ln   *Listener
	addr string
}

func startServer(t *testing.T, opts Options) *server {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln := NewListener(raw, opts)
	var mu sync.Mutex
	var hijacked []net.Conn
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hijack" {
				c, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
					mu.Lock()
					hijacked = append(hijacked, c)
					mu.Unlock()
				}
				return
			}
			io.WriteString(w, "ok")
		}),
		ConnState:         ln.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln.OnPressure(func(high bool) { srv.SetKeepAlivesEnabled(!high) })
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range hijacked {
			c.Close()
		}
	})
	return &server{ln: ln, addr: raw.Addr().String()}
}

// dial connects from the loopback address from.
func (s *server) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends one keep-alive request on c and reads the answer; it reports
// whether the answer was "ok".
func get(c net.Conn, path string) (bool, *http.Response) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return false, nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false, nil
	}
	if path == "/hijack" {
		return resp.StatusCode == http.StatusOK, resp
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2))
	resp.Body.Close()
	return string(body) == "ok", resp
}

// closedByServer reports whether the server has closed c, waiting up to a
// few seconds for it to.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneClientGetsAtMostPerClientConnections(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Max: 100, PerClient: 5})
	var kept []net.Conn
	for range 5 {
		c := s.dial(t, "127.0.0.3")
		if ok, _ := get(c, "/"); !ok {
			t.Fatal("a connection within the client's allowance was not served")
		}
		kept = append(kept, c) // idle, kept alive
	}
	for i := range 5 {
		c := s.dial(t, "127.0.0.3")
		if !closedByServer(c) {
			t.Fatalf("connection %d past the allowance stayed open", 6+i)
		}
	}
	if got := s.ln.Stats(); got.Open != 5 || got.Clients != 1 {
		t.Errorf("stats %+v, want 5 open from 1 client", got)
	}
	if ok, _ := get(s.dial(t, "127.0.0.2"), "/"); !ok {
		t.Error("another client was not served while the first held its allowance")
	}
	kept[0].Close() // 4 of its own open now, and the other client's idle one
	waitFor(t, "the server counts the closed connection", func() bool { return s.ln.Stats().Open == 5 })
	if ok, _ := get(s.dial(t, "127.0.0.3"), "/"); !ok {
		t.Error("after one of its connections closed, the client could not open another")
	}
}

func TestATrustedProxyIsNotLimitedPerClient(t *testing.T) {
	t.Parallel()
	proxies, err := clientaddr.ParseProxies("127.0.0.4/32")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Options{Max: 100, PerClient: 2, Trusted: proxies})
	for i := range 6 {
		if ok, _ := get(s.dial(t, "127.0.0.4"), "/"); !ok {
			t.Fatalf("connection %d from the trusted proxy was not served", i+1)
		}
	}
	if got := s.ln.Stats(); got.Open != 6 || got.Clients != 0 {
		t.Errorf("stats %+v, want 6 open and no client counted", got)
	}
}

func TestIdleConnectionsAreClosedNearMax(t *testing.T) {
	t.Parallel()
	const max = 16
	s := startServer(t, Options{Max: max})
	// Idle keep-alive connections from many addresses, up to just under
	// the high-water mark (14 of 16): all stay open.
	high := max - max/8
	var idle []net.Conn
	for i := range high - 1 {
		c := s.dial(t, fmt.Sprintf("127.0.1.%d", i+1))
		if ok, _ := get(c, "/"); !ok {
			t.Fatal("not served")
		}
		idle = append(idle, c)
	}
	waitFor(t, "the server sees them all idle", func() bool { return s.ln.Stats() == Stats{Open: high - 1, Idle: high - 1, Clients: high - 1} })
	// One more reaches it: the server closes its idle connections, which
	// ends the rush at once.
	c := s.dial(t, "127.0.2.1")
	for i, c := range idle {
		if !closedByServer(c) {
			t.Fatalf("idle connection %d stayed open at the high-water mark", i+1)
		}
	}
	if ok, _ := get(c, "/"); !ok {
		t.Error("the newcomer was not served")
	}
	// Keep-alives are back once the rush is over.
	waitFor(t, "a connection is kept alive again", func() bool {
		c := s.dial(t, "127.0.2.2")
		defer c.Close()
		ok, resp := get(c, "/")
		return ok && !resp.Close
	})
}

func TestAcceptWaitsAtMaxInsteadOfRefusing(t *testing.T) {
	t.Parallel()
	const max = 4
	s := startServer(t, Options{Max: max})
	// Connections that send nothing are not idle but new: they hold their
	// place until the header timeout.
	var silent []net.Conn
	for i := range max {
		silent = append(silent, s.dial(t, fmt.Sprintf("127.0.3.%d", i+1)))
	}
	waitFor(t, "all are accepted", func() bool { return s.ln.Stats().Open == max })
	served := make(chan bool, 1)
	late := s.dial(t, "127.0.3.9") // sits in the backlog
	go func() { ok, _ := get(late, "/"); served <- ok }()
	select {
	case <-served:
		t.Fatal("a connection past Max was served while Max were open")
	case <-time.After(200 * time.Millisecond):
	}
	silent[0].Close()
	if !<-served {
		t.Error("the waiting connection was not served once one closed")
	}
}

func TestAStreamLeavesTheOpenCount(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Max: 10, PerClient: 1})
	c := s.dial(t, "127.0.0.5")
	if ok, _ := get(c, "/hijack"); !ok {
		t.Fatal("the stream was not answered")
	}
	waitFor(t, "the stream leaves the count", func() bool { return s.ln.Stats() == Stats{} })
	if ok, _ := get(s.dial(t, "127.0.0.5"), "/"); !ok {
		t.Error("with its only connection a stream, the client could not open another")
	}
}

func TestCloseEndsAWaitingAccept(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, Options{Max: 1})
	c1, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	errc := make(chan error, 1)
	go func() { _, err := ln.Accept(); errc <- err }()
	ln.Close()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

// A stream takes a descriptor of its own of the socket it is handed, and
// closes the connection: the socket stays open, and the count does not
// hold it as a connection.
func TestAStreamCanTakeTheSocketsDescriptor(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, Options{Max: 1})
	defer ln.Close()
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ln.ConnState(c, http.StateHijacked)
	fc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		t.Fatal("an accepted connection does not hand on its File")
	}
	f, err := fc.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.Close()
	if _, err := f.Write([]byte("still open")); err != nil {
		t.Fatalf("write through the stream's descriptor: %v", err)
	}
	got := make([]byte, len("still open"))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "still open" {
		t.Fatalf("the client read %q, %v", got, err)
	}
	if s := ln.Stats(); s != (Stats{}) {
		t.Errorf("counts after the take-over: %+v, want none", s)
	}
}
