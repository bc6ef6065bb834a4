package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/migrations"
	"github.com/ordertracker/ordertracker/orders"
)

// This file is the floor: a server that does the least any server must do
// to deliver an event to every stream of all orders, so that a fan-out run
// against it measures what the machine allows, in the same session as the
// real server. -floor starts it, as "loadgen floor", in place of the web
// process.
//
// It speaks just enough of the web process's protocol for the load
// generator: /readyz, a staff sign-in that sets a cookie, and
// /staff/events, which sends the events after the stream's Last-Event-ID
// as they happen (no replay of older ones). Once a stream's headers are
// out, the floor keeps nothing but its socket and its cursor. It hears of
// events through the product's own listener and encodes each with the
// product's own frame encoder, so its frames are byte for byte the web
// process's; each batch is encoded once, as one chunk, and written to
// every socket with one write(2) each, from one goroutine per CPU: no HTTP,
// no buffers, no locks, no timers, no heartbeats, no checks for clients
// that left, no slow-client handling. A socket that would block is skipped
// and counted (as dropped), not waited for.

// A baseline is a server the load generator starts in place of the web
// process, to measure against it in the same session: the floor, or the
// plain net/http hub (plain.go).
type baseline interface {
	// attach is the handler of GET /staff/events.
	attach(w http.ResponseWriter, r *http.Request)
	// write delivers a batch of events, in position order, to every stream.
	write(events []orders.Event)
	// dropped counts the writes given up on because a stream could not
	// take them at once.
	dropped() int64
}

// runFloor runs the floor on addr over the database at databaseURL until
// ctx is done.
func runFloor(ctx context.Context, databaseURL, addr string, stderr io.Writer) error {
	return runBaseline(ctx, "floor", &floor{writers: make([][]floorStream, runtime.GOMAXPROCS(0))}, databaseURL, addr, stderr)
}

// runBaseline runs b, named name, on addr over the database at databaseURL
// until ctx is done.
func runBaseline(ctx context.Context, name string, b baseline, databaseURL, addr string, stderr io.Writer) error {
	if databaseURL == "" || addr == "" {
		return fmt.Errorf("loadgen %s: DATABASE_URL and ADDR must be set; loadgen -%s starts it with both", name, name)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("%s: open the database: %w", name, err)
	}
	defer pool.Close()
	if err := migrateBaseline(ctx, pool); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	head, err := orders.NewStore(pool, orders.Options{}).Head(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	listener := orders.NewListener(pool.Config().ConnConfig, log)
	listener.From(head)
	// The floor's handler writes every batch to every socket before it
	// returns, which holds up the listener's next read: the floor has no
	// writer goroutines of its own to hand the batch to, on purpose.
	listener.Handle(b.write)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !listener.Connected() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ordertracker_streams_dropped_slow_total %d\n", b.dropped())
	})
	mux.HandleFunc("POST /staff/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "floor"})
		http.Redirect(w, r, "/staff", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /staff/events", b.attach)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	return listener.Run(ctx)
}

// migrateBaseline brings the schema up to date, as every role of the
// product does at start.
func migrateBaseline(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := migrations.Apply(ctx, conn.Conn()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// A floor holds its streams, one list per writer.
type floor struct {
	mu      sync.Mutex
	writers [][]floorStream
	conns   []net.Conn // kept, so that nothing closes them
	next    int
	missed  atomic.Int64 // writes skipped because a socket had no room
}

func (f *floor) dropped() int64 { return f.missed.Load() }

type floorStream struct {
	fd   int
	last int64 // the position of the last event it has
}

func (f *floor) attach(w http.ResponseWriter, r *http.Request) {
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		conn.Close()
		return
	}
	var fd int
	raw.Control(func(d uintptr) { fd = int(d) })
	// The headers go out under the lock, with the stream joining its
	// writer: a batch written meanwhile would come before them, and once a
	// client has them, no event may pass its stream by.
	f.mu.Lock()
	defer f.mu.Unlock()
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		conn.Close()
		return
	}
	i := f.next % len(f.writers)
	f.writers[i] = append(f.writers[i], floorStream{fd: fd, last: last})
	f.conns = append(f.conns, conn)
	f.next++
}

// write writes events, a batch in position order, to every stream, one
// goroutine per CPU: all of them, as one chunk encoded once, to every
// stream that has none of them, and the ones it lacks to a stream that has
// some.
func (f *floor) write(events []orders.Event) {
	// The frames back to back, and where each begins: the frames a stream
	// lacks are always a tail of them.
	var frames []byte
	starts := make([]int, len(events))
	for i, ev := range events {
		starts[i] = len(frames)
		frames = stream.AppendStaffFrame(frames, ev)
	}
	shared := appendChunk(nil, frames)
	first, last := events[0].Position, events[len(events)-1].Position
	f.mu.Lock()
	defer f.mu.Unlock()
	var wg sync.WaitGroup
	for _, streams := range f.writers {
		wg.Go(func() {
			for i := range streams {
				s := &streams[i]
				if s.last >= last {
					continue
				}
				chunk := shared
				if s.last >= first {
					next, _ := slices.BinarySearchFunc(events, s.last+1, func(ev orders.Event, p int64) int { return cmp.Compare(ev.Position, p) })
					chunk = appendChunk(nil, frames[starts[next]:])
				}
				s.last = last
				if n, _ := syscall.Write(s.fd, chunk); n != len(chunk) {
					f.missed.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// appendChunk appends data to dst as one chunk of HTTP/1.1's chunked
// transfer coding, which the floor writes itself once a stream's headers
// are out.
func appendChunk(dst, data []byte) []byte {
	buf := bytes.NewBuffer(dst)
	// A bytes.Buffer takes every write, so the chunk cannot fail to go in.
	httputil.NewChunkedWriter(buf).Write(data)
	return buf.Bytes()
}
