package web

import (
	"context"
	"errors"
	"github.com/ordertracker/ordertracker/internal/sse"
	"github.com/ordertracker/ordertracker/internal/stream"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ordertracker/ordertracker/orders"
)

// StreamConfig tunes the SSE streams.
type StreamConfig struct {
	// Heartbeat is how often an idle stream sends a comment, so proxies and
	// the browser know it is alive; zero means 15 seconds.
	Heartbeat time.Duration
	// Retry is the reconnection delay sent to the browser once per stream;
	// zero means 2 seconds.
	Retry time.Duration
	// WriteTimeout bounds every single write to a stream; a client that
	// cannot take a frame in that time is disconnected. Zero means 10
	// seconds. Streams have no server-wide write timeout: they are meant to
	// last for hours.
	WriteTimeout time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Retry <= 0 {
		c.Retry = 2 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	return c
}

// orderEvents is what a customer's stream reads.
type orderEvents interface {
	Get(ctx context.Context, token string) (orders.Order, error)
	Events(ctx context.Context, orderID int64, afterSeq int) ([]orders.Event, error)
}

// handleOrderEvents serves GET /orders/{token}/events: the events of one
// order, with the order's own sequence number as the event id.
//
// It subscribes to the hub before it reads the log, so an event that commits
// in between arrives twice, once from each, and never zero times; the
// sequence number then drops the second copy.
func handleOrderEvents(store orderEvents, hub *Hub, cfg StreamConfig, log *slog.Logger) http.Handler {
	cfg = cfg.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		order, err := store.Get(ctx, chi.URLParam(r, "token"))
		if errors.Is(err, orders.ErrNotFound) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			streamUnavailable(w, r, cfg, log, err)
			return
		}
		cursor, ok := streamCursor(r)
		if !ok || cursor > int64(order.Seq) {
			// No cursor, or one from another world: start from the current
			// state, which is the replay of the latest event.
			cursor = int64(order.Seq) - 1
		} else if cursor == int64(order.Seq) && order.Status.Terminal() {
			// The client has seen the end; 204 tells EventSource to stop.
			w.WriteHeader(http.StatusNoContent)
			return
		}

		sub, admitted := hub.Subscribe(order.ID)
		if !admitted {
			streamBusy(w, cfg)
			return
		}
		// Safe after a hand-over too: the hub has already let go of sub.
		defer hub.Unsubscribe(sub)
		s := startStream(w, cfg, hub)
		backlog, err := store.Events(ctx, order.ID, int(cursor))
		if err != nil {
			s.abandon(log, err)
			return
		}
		last := int(cursor)
		for _, ev := range backlog {
			if s.write(stream.AppendOrderFrame(s.buf[:0], ev)) != nil {
				return
			}
			hub.sent.Inc()
			last = ev.Seq
			if ev.Status.Terminal() {
				s.flush()
				return
			}
		}
		if s.flush() != nil {
			return
		}
		if s.attach(r, sub, int64(last)) {
			return
		}
		s.follow(ctx, sub, func(d *delivery) (frame []byte, done bool) {
			if d.event.Seq <= last {
				return nil, false // already sent from the log
			}
			last = d.event.Seq
			return d.orderFrame(), d.event.Status.Terminal()
		})
	})
}

// staffEvents is what the stream of all orders reads.
type staffEvents interface {
	EventsAfter(ctx context.Context, position int64, limit int) ([]orders.Event, error)
	Head(ctx context.Context) (int64, error)
	Latest(ctx context.Context, limit int) ([]orders.Event, error)
}

// replayPage is how many events one replay query reads.
const replayPage = 500

// snapshotSize is how many of the newest orders a stream of all orders
// starts with when it has no cursor.
const snapshotSize = 100

// handleStaffEvents serves GET /staff/events: the events of every order,
// with the event's position in the log as the event id.
func handleStaffEvents(store staffEvents, hub *Hub, cfg StreamConfig, log *slog.Logger) http.Handler {
	cfg = cfg.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		head, err := store.Head(ctx)
		if err != nil {
			streamUnavailable(w, r, cfg, log, err)
			return
		}
		cursor, ok := streamCursor(r)
		if cursor > head {
			ok = false
		}

		sub, admitted := hub.Subscribe(0)
		if !admitted {
			streamBusy(w, cfg)
			return
		}
		// Safe after a hand-over too: the hub has already let go of sub.
		defer hub.Unsubscribe(sub)
		s := startStream(w, cfg, hub)
		last := cursor
		if !ok {
			// Start with the state of the newest orders: the latest event of
			// each, in position order. Every later event has a higher
			// position than all of them, so replaying after the last one
			// misses nothing and repeats nothing.
			snapshot, err := store.Latest(ctx, snapshotSize)
			if err != nil {
				s.abandon(log, err)
				return
			}
			last = 0
			for _, ev := range snapshot {
				if s.write(stream.AppendStaffFrame(s.buf[:0], ev)) != nil {
					return
				}
				hub.sent.Inc()
				last = ev.Position
			}
			if len(snapshot) == 0 {
				last = head
			}
		}
		for {
			page, err := store.EventsAfter(ctx, last, replayPage)
			if err != nil {
				s.abandon(log, err)
				return
			}
			for _, ev := range page {
				if s.write(stream.AppendStaffFrame(s.buf[:0], ev)) != nil {
					return
				}
				hub.sent.Inc()
				last = ev.Position
			}
			if s.flush() != nil {
				return
			}
			if len(page) < replayPage {
				break
			}
		}
		if s.attach(r, sub, last) {
			return
		}
		s.follow(ctx, sub, func(d *delivery) ([]byte, bool) {
			if d.event.Position <= last {
				return nil, false
			}
			last = d.event.Position
			return d.staffFrame(), false
		})
	})
}

// streamCursor reads the client's cursor: the Last-Event-ID header that
// EventSource sends when it reconnects, else ?since= from the page that
// opened the stream. Anything that is not a non-negative number counts as no
// cursor: a stream must never fail for a bad cursor.
func streamCursor(r *http.Request) (int64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// A liveResponse writes frames to one client.
type liveResponse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	cfg StreamConfig
	hub *Hub   // for metrics; nil for a stream that sends no events
	buf []byte // scratch space for frames encoded for this stream alone
}

// startStream sends the headers and the retry frame.
func startStream(w http.ResponseWriter, cfg StreamConfig, hub *Hub) *liveResponse {
	s := &liveResponse{w: w, rc: http.NewResponseController(w), cfg: cfg, hub: hub, buf: make([]byte, 0, 512)}
	// The server's read deadline would otherwise end a long stream.
	_ = s.rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = s.send(sse.AppendRetry(s.buf[:0], cfg.Retry))
	return s
}

// send writes one frame and flushes it.
func (s *liveResponse) send(frame []byte) error {
	if err := s.write(frame); err != nil {
		return err
	}
	return s.flush()
}

// write buffers one frame, within the write timeout: the response's buffer
// writes through to the connection when it fills.
func (s *liveResponse) write(frame []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := s.w.Write(frame)
	return err
}

// flush sends what is buffered to the client now.
func (s *liveResponse) flush() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		return err
	}
	return s.rc.Flush()
}

// attach hands the stream, replayed and flushed up to the event with id
// last, over to the hub, which writes it from then on without a goroutine
// of its own, and reports whether it did. Only an HTTP/1.1 response can be
// handed over: its connection is taken from net/http (hijacked), which
// frees net/http's goroutines and buffers for it, and its chunked body goes
// on chunk by chunk. The handler must return at once when it did.
func (s *liveResponse) attach(r *http.Request, sub *subscription, last int64) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Context().Err() != nil {
		return false
	}
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return false
	}
	conn, _, err := s.rc.Hijack()
	if err != nil {
		return false // not a connection of net/http's HTTP/1 server
	}
	s.hub.attach(sub, conn, srv, last, s.cfg)
	return true
}

// follow sends the live frames that pick chooses, and heartbeats, until
// pick says done, the hub drops the subscription, a write fails, or ctx
// ends (the client left or the server is shutting down).
func (s *liveResponse) follow(ctx context.Context, sub *subscription, pick func(*delivery) (frame []byte, done bool)) {
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case batch, ok := <-sub.c:
			if !ok {
				return // dropped for falling behind; the client will replay
			}
			sent, finished := 0, false
			for _, d := range batch {
				frame, done := pick(d)
				if frame != nil {
					if s.write(frame) != nil {
						return
					}
					sent++
				}
				if finished = done; finished {
					break
				}
			}
			if sent > 0 {
				if s.flush() != nil {
					return
				}
				s.hub.sent.Add(float64(sent))
				if noticed := batch[0].noticed; !noticed.IsZero() {
					s.hub.latency.Observe(time.Since(noticed).Seconds())
				}
			}
			if finished {
				return
			}
		case <-heartbeat.C:
			if s.send(sse.AppendComment(s.buf[:0], "heartbeat")) != nil {
				return
			}
		}
	}
}

// abandon ends a stream that failed after its headers went out. The client
// reconnects after the retry delay and resumes from its last event id.
func (s *liveResponse) abandon(log *slog.Logger, err error) {
	log.Warn("stream ended early", "err", err)
	_ = s.send(sse.AppendComment(s.buf[:0], "interrupted; reconnect to resume"))
}

// streamUnavailable answers a stream request the database cannot serve
// now. Any status but 200 would make EventSource give up for good, so it is
// a 200 that asks the browser to come back a little later.
func streamUnavailable(w http.ResponseWriter, r *http.Request, cfg StreamConfig, log *slog.Logger, err error) {
	if r.Context().Err() != nil {
		return
	}
	log.Warn("stream refused for now", "err", err)
	s := startStream(w, cfg, nil)
	_ = s.send(sse.AppendComment(s.buf[:0], "temporarily unavailable; retrying"))
}

// busyRetry is how long a browser turned away at MAX_STREAMS waits before it
// tries again.
const busyRetry = 30 * time.Second

// streamBusy turns a stream away because the process has as many open as it
// may. Like streamUnavailable it is a 200, so that the browser keeps trying,
// with a long retry so that it does not try again at once.
func streamBusy(w http.ResponseWriter, cfg StreamConfig) {
	cfg.Retry = busyRetry
	s := startStream(w, cfg, nil)
	_ = s.send(sse.AppendComment(s.buf[:0], "too many streams; come back later"))
}
