package web

import (
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/orders"
)

// fixtures is a test app's store, with the orders and moves its tests make.
type fixtures struct {
	store *orders.Store
}

// create places an order of two Margheritas and a lemonade for name.
func (f fixtures) create(t *testing.T, name string) orders.Order {
	t.Helper()
	o, err := f.store.Create(context.Background(), orders.NewOrder{
		CustomerName: name,
		Lines:        []orders.Line{{MenuID: "margherita", Quantity: 2}, {MenuID: "lemonade", Quantity: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// advance moves o one stage on from status from, as staff.
func (f fixtures) advance(t *testing.T, o orders.Order, from orders.Status) {
	t.Helper()
	if _, err := f.store.Advance(context.Background(), o.Token, from, orders.ByStaff); err != nil {
		t.Fatalf("advance from %s: %v", from, err)
	}
}

// deliver moves o through every stage after from.
func (f fixtures) deliver(t *testing.T, o orders.Order, from orders.Status) {
	t.Helper()
	for ; from != orders.Delivered; from, _ = from.Next() {
		f.advance(t, o, from)
	}
}

// moveTo moves a new order o on until it is in status to.
func (f fixtures) moveTo(t *testing.T, o orders.Order, to orders.Status) {
	t.Helper()
	for from := orders.Received; from != to; from, _ = from.Next() {
		f.advance(t, o, from)
	}
}

// status is o's status now.
func (f fixtures) status(t *testing.T, o orders.Order) orders.Status {
	t.Helper()
	got, err := f.store.Get(context.Background(), o.Token)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

// runListener runs a listener on config that feeds publish (and wakes worker,
// if there is one) until the test ends, and waits until it is connected.
// With from at zero or more, it hands on every event after that position
// (Listener.From), as a web process does; below zero, it starts at the
// head when it connects.
// startWorker starts worker, once; tests start it when they want orders to
// move on by themselves. Register the test's server after this, so that the
// server closes before the listener stops.
func runListener(t *testing.T, config *pgx.ConnConfig, from int64, publish func([]orders.Event), worker *orders.Worker) (listener *orders.Listener, startWorker func()) {
	t.Helper()
	listener = orders.NewListener(config, quiet)
	if from >= 0 {
		listener.From(from)
	}
	listener.Handle(publish)
	if worker != nil {
		listener.Handle(worker.WakeOn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { listener.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	startWorker = sync.OnceFunc(func() { wg.Go(func() { worker.Run(ctx) }) })
	waitUntil(t, "the listener connects", listener.Connected)
	return listener, startWorker
}

// cuttable is a listener that remembers the connections it accepted, so
// that a test can cut them all at once, as a network failure or a server
// restart would, including those that net/http handed over to the hub
// (which httptest.Server.CloseClientConnections does not reach).
//
// The hub writes to a stream's socket through a descriptor of its own (the
// File of the connection it is handed), which closing the connection does
// not reach: cut shuts those sockets down instead, as a network failure
// would, whichever descriptor the hub writes them through.
type cuttable struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	files []*os.File // the streams' own descriptors, handed out since the last cut
	held  bool       // new connections are closed at once, as a network that is down
}

func newCuttable(ln net.Listener) *cuttable {
	return &cuttable{Listener: ln, conns: make(map[net.Conn]struct{})}
}

func (l *cuttable) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		c.Close()
	} else {
		l.conns[c] = struct{}{}
	}
	return &cuttableConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

// hold cuts every connection and closes every new one at once until
// release: to a browser, the network is down.
func (l *cuttable) hold() {
	l.cut()
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

// release lets connections through again.
func (l *cuttable) release() {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
}

// cut closes every connection accepted so far, and shuts down every socket
// a stream took a descriptor of.
func (l *cuttable) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
	for _, f := range l.files {
		// A stream that has ended has closed its file: Control fails, and
		// nothing is shut down.
		if raw, err := f.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
		}
	}
	l.files = nil
}

// A cuttableConn is a connection a cuttable accepted.
type cuttableConn struct {
	*net.TCPConn
	l *cuttable
}

// File is what the hub takes a stream's own descriptor with.
func (c *cuttableConn) File() (*os.File, error) {
	f, err := c.TCPConn.File()
	if err == nil {
		c.l.mu.Lock()
		c.l.files = append(c.l.files, f)
		c.l.mu.Unlock()
	}
	return f, err
}

// streamGoroutines counts the goroutines that a stream can leave behind:
// the stream engine's, and those of HTTP connections on either side. Other
// goroutines come and go with the rest of the process (the listener's
// probes, the database pool's), and would make a count of all of them
// depend on what else the machine is doing. The engine's hang-up watcher is
// one per process, started by the first stream and kept: it is not counted,
// or the count would depend on whether a test before had opened a stream.
func streamGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/stream.(*hangups).run") {
			continue
		}
		if strings.Contains(g, "ordertracker/internal/stream.") ||
			strings.Contains(g, "net/http.(*conn).serve") ||
			strings.Contains(g, "net/http.(*persistConn)") {
			count++
		}
	}
	return count
}
