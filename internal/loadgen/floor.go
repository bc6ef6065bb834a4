package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
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

// runFloor runs the floor: a server that does the least any server must do
// to deliver an event to every stream of all orders, so that a fan-out run
// against it measures what the machine allows, in the same session as the
// real server. -floor starts it, as "loadgen floor", in place of the web
// process, on addr over the database at databaseURL.
//
// It speaks just enough of the web process's protocol for the load
// generator: /readyz, a staff sign-in that sets a cookie, and
// /staff/events, which sends the events after the stream's Last-Event-ID
// as they happen (no replay of older ones). Once a stream's headers are
// out, the floor keeps nothing but its socket and its cursor. On each
// notification it reads the new events, encodes them once as one chunk,
// and writes that chunk to every socket with one write(2) each, from
// one goroutine per CPU: no HTTP, no buffers, no locks, no timers, no
// heartbeats, no checks for clients that left, no slow-client handling. A
// socket that would block is skipped and counted (as dropped), not waited
// for.
func runFloor(ctx context.Context, databaseURL, addr string, stderr io.Writer) error {
	pool, err := pgxpool.New(ctx, databaseURL)
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

	f := &floor{writers: make([][]floorStream, runtime.GOMAXPROCS(0))}
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
	ln, err := net.Listen("tcp", addr)
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
		frames, err := floorFrames(ctx, conn.Conn(), cursor)
		if err != nil {
			return err
		}
		if len(frames) > 0 {
			cursor = frames[len(frames)-1].position
			f.write(frames)
		}
	}
}

// A floor holds its streams, one list per writer.
type floor struct {
	mu      sync.Mutex
	writers [][]floorStream
	conns   []net.Conn // kept, so that nothing closes them
	next    int
	missed  atomic.Int64 // writes skipped because a socket had no room
}

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
	i := f.next % len(f.writers)
	f.writers[i] = append(f.writers[i], floorStream{fd: fd, last: last})
	f.conns = append(f.conns, conn)
	f.next++
	f.mu.Unlock()
}

// write writes frames to every stream, one goroutine per CPU: all of them,
// as one chunk encoded once, to every stream that has none of them.
func (f *floor) write(frames []floorFrame) {
	first, last := frames[0].position, frames[len(frames)-1].position
	shared := floorChunk(frames)
	f.mu.Lock()
	defer f.mu.Unlock()
	var wg sync.WaitGroup
	for _, streams := range f.writers {
		wg.Go(func() {
			for i := range streams {
				s := &streams[i]
				chunk := shared
				if s.last >= last {
					continue
				} else if s.last >= first {
					chunk = floorChunk(slices.DeleteFunc(slices.Clone(frames), func(fr floorFrame) bool { return fr.position <= s.last }))
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

// A floorFrame is one event's frame.
type floorFrame struct {
	position int64
	bytes    []byte
}

// floorChunk encodes frames as one chunk of the chunked coding.
func floorChunk(frames []floorFrame) []byte {
	n := 0
	for _, fr := range frames {
		n += len(fr.bytes)
	}
	chunk := strconv.AppendInt(nil, int64(n), 16)
	chunk = append(chunk, "\r\n"...)
	for _, fr := range frames {
		chunk = append(chunk, fr.bytes...)
	}
	return append(chunk, "\r\n"...)
}

// floorFrames reads the events after cursor and encodes them as frames of
// the web process's form (event name, id, JSON data with the event's
// time), each padded to floorFrameSize.
func floorFrames(ctx context.Context, conn *pgx.Conn, cursor int64) ([]floorFrame, error) {
	rows, err := conn.Query(ctx, "SELECT position, order_id, seq, status, actor, at FROM order_events WHERE position > $1 ORDER BY position", cursor)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var frames []floorFrame
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
			return nil, err
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		frame := fmt.Appendf(nil, "event: order_update\nid: %d\ndata: %s\n\n", ev.Position, data)
		if pad := floorFrameSize - len(frame); pad > 0 {
			ev.Padding = strings.Repeat(" ", pad)
			data, _ = json.Marshal(ev)
			frame = fmt.Appendf(frame[:0], "event: order_update\nid: %d\ndata: %s\n\n", ev.Position, data)
		}
		frames = append(frames, floorFrame{ev.Position, frame})
	}
	return frames, rows.Err()
}

// floorFrameSize is about the size of the web process's frame of an event
// on a stream of all orders, which carries the order's customer and items.
const floorFrameSize = 400
