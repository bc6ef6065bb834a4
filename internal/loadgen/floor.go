package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/migrations"
)

// floorEnv marks a process started by the load generator as the floor: a
// server that does the least any server must do to deliver an event to
// every stream of all orders, so that a fan-out run against it measures
// what the machine allows, in the same session as the real server.
//
// It speaks just enough of the web process's protocol for the load
// generator: /readyz, a staff sign-in that sets a cookie, and
// /staff/events, whose responses start at the head of the log. Once a
// stream's headers are out, the floor keeps nothing but its socket. On
// each notification it reads the new events, encodes them once as one
// chunk, and writes that chunk to every socket with one write(2) each, from
// one goroutine per CPU: no HTTP, no buffers, no locks, no timers, no
// heartbeats, no checks for clients that left, no slow-client handling. A
// socket that would block is skipped and counted (as dropped), not waited
// for.
const floorEnv = "ORDERTRACKER_LOADGEN_FLOOR"

func runFloor(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := migrations.Apply(ctx, conn.Conn()); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN order_update"); err != nil {
		return err
	}
	var cursor int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(position), 0) FROM order_events").Scan(&cursor); err != nil {
		return err
	}

	f := &floor{writers: make([][]int, runtime.GOMAXPROCS(0))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ordertracker_streams_dropped_slow_total %d\n", f.missed.Load())
	})
	mux.HandleFunc("POST /staff/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "floor", Value: "1"})
		http.Redirect(w, r, "/staff", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /staff/events", f.attach)
	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		chunk, last, err := floorChunk(ctx, conn.Conn(), cursor)
		if err != nil {
			return err
		}
		if chunk != nil {
			cursor = last
			f.write(chunk)
		}
	}
}

// A floor holds the descriptors of its streams, one list per writer.
type floor struct {
	mu      sync.Mutex
	writers [][]int
	conns   []net.Conn // kept, so that nothing closes them
	next    int
	missed  atomic.Int64 // writes skipped because a socket had no room
}

func (f *floor) attach(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		conn.Close()
		return
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		conn.Close()
		return
	}
	var fd int
	raw.Control(func(d uintptr) { fd = int(d) })
	f.mu.Lock()
	f.writers[f.next%len(f.writers)] = append(f.writers[f.next%len(f.writers)], fd)
	f.conns = append(f.conns, conn)
	f.next++
	f.mu.Unlock()
}

// write writes chunk to every stream, one goroutine per CPU.
func (f *floor) write(chunk []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var wg sync.WaitGroup
	for _, fds := range f.writers {
		wg.Go(func() {
			for _, fd := range fds {
				if n, _ := syscall.Write(fd, chunk); n != len(chunk) {
					f.missed.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// floorChunk reads the events after cursor and encodes them as one chunk
// of frames of the web process's form (event name, id, JSON data with the
// event's time), each padded to floorFrameSize.
func floorChunk(ctx context.Context, conn *pgx.Conn, cursor int64) (chunk []byte, last int64, err error) {
	rows, err := conn.Query(ctx, "SELECT position, order_id, seq, status, actor, at FROM order_events WHERE position > $1 ORDER BY position", cursor)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var frames []byte
	for rows.Next() {
		var ev struct {
			Position int64     `json:"position"`
			OrderID  int64     `json:"order_id"`
			Seq      int       `json:"seq"`
			Status   string    `json:"status"`
			Actor    string    `json:"actor"`
			At       time.Time `json:"at"`
			Padding  string    `json:"padding"`
		}
		if err := rows.Scan(&ev.Position, &ev.OrderID, &ev.Seq, &ev.Status, &ev.Actor, &ev.At); err != nil {
			return nil, 0, err
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, 0, err
		}
		frame := fmt.Appendf(nil, "event: order_update\nid: %d\ndata: %s\n\n", ev.Position, data)
		if pad := floorFrameSize - len(frame); pad > 0 {
			ev.Padding = strings.Repeat(" ", pad)
			data, _ = json.Marshal(ev)
			frame = fmt.Appendf(frame[:0], "event: order_update\nid: %d\ndata: %s\n\n", ev.Position, data)
		}
		frames = append(frames, frame...)
		last = ev.Position
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if frames == nil {
		return nil, cursor, nil
	}
	chunk = strconv.AppendInt(nil, int64(len(frames)), 16)
	chunk = append(chunk, "\r\n"...)
	chunk = append(chunk, frames...)
	return append(chunk, "\r\n"...), last, nil
}

// floorFrameSize is about the size of the web process's frame of an event
// on a stream of all orders, which carries the order's customer and items.
const floorFrameSize = 400
