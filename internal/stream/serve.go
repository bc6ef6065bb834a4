package stream

import (
	"context"
	"net/http"
	"time"

	"github.com/ordertracker/ordertracker/internal/sse"
	"github.com/ordertracker/ordertracker/orders"
)

// A Replay reads from the log what a new stream's client has not seen: the
// events after its cursor, in position order (a stream of all orders with
// no cursor starts with a snapshot of the board instead). It runs after the
// stream has subscribed, so an event that commits meanwhile is both in the
// replay and held for the stream, and the stream's cursor sends it once.
type Replay func(ctx context.Context) ([]orders.Event, error)

// Serve serves one event stream, start to end: it subscribes, replays, and
// hands the stream over to its shard's writer, which sends it everything
// from then on. An HTTP/1 connection without TLS is taken over from
// net/http and Serve returns at once; any other response stays with its
// handler, and Serve returns when the stream ends. (A TLS connection
// cannot be written to without waiting: a write cut short by a deadline
// leaves half a record on the wire, and the connection is lost.)
//
// A stream the hub cannot take now (at MaxStreams, its client at
// MaxStreamsPerClient, or draining), or whose
// replay fails, gets a 200 that tells the browser when to come back: any
// other status would make EventSource give up for good. A client that has
// seen the end of everything it follows gets 204, which stops EventSource.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, sub Subscription, replay Replay) {
	s, why := h.subscribe(sub, h.opts.ClientKey(r))
	if why != "" {
		h.refuse(w, why)
		return
	}
	ctx := r.Context()
	backlog, err := replay(ctx)
	if err != nil {
		h.cancel(s)
		h.Unavailable(w, r, err)
		return
	}
	body, frames, unknown := s.replay(backlog)
	if sub.reset {
		body = append(appendResetFrame(nil, sub.after), body...)
		frames++
	}
	if frames == 0 && unknown == 0 && s.cursor.finished() {
		h.cancel(s)
		w.WriteHeader(http.StatusNoContent)
		return
	}

	rc := http.NewResponseController(w)
	takeOver := r.ProtoMajor == 1 && r.TLS == nil
	if takeOver {
		// The connection is taken over, and closed when the stream ends:
		// a client must not send another request down it.
		w.Header().Set("Connection", "close")
	}
	writeHeader(w, rc)
	out := append(sse.AppendRetry(nil, h.opts.Retry), h.heartbeat.frames()...)
	out = append(out, body...)
	err = writeAndFlush(w, rc, out, h.opts.WriteTimeout)
	h.metrics.sent.Add(float64(frames))
	if err != nil || s.cursor.finished() || ctx.Err() != nil {
		// The client has gone, or has everything it will ever get: the
		// response ends here.
		h.cancel(s)
		return
	}
	if takeOver {
		if conn, _, err := rc.Hijack(); err == nil {
			s.direct.take(conn, r.ProtoAtLeast(1, 1))
			s.shard.post(job{op: opHandOver, stream: s, out: &s.direct})
			h.reclaim.added()
			return
		}
	}
	t := newFlushed(w)
	t.flush = s.flush
	s.shard.post(job{op: opHandOver, stream: s, out: t})
	t.serve(ctx, func() { s.shard.post(job{op: opEnd, stream: s, why: endGone}) })
}

// replay returns the frames of the events of backlog that the stream's
// client has not seen, how many there are, and, for a stream of several
// orders, how many of its tokens name no order (reported first).
func (s *stream) replay(backlog []orders.Event) (body []byte, frames, unknown int) {
	var events []byte
	for i := range backlog {
		ev := &backlog[i]
		if !s.cursor.fresh(ev) {
			continue
		}
		frames++
		// The frames of an event the window holds were encoded when it was
		// published; those of an older event are encoded here.
		d := s.hub.window.delivery(ev.Position)
		if d == nil {
			d = &delivery{event: *ev}
		}
		switch s.cursor.kind {
		case allOrders:
			events = append(events, d.staffFrame()...)
		case oneOrder:
			events = append(events, d.orderFrame()...)
		case someOrders:
			events = appendFrameWithID(events, s.cursor.set.id(), d.orderFrame())
		}
		if s.cursor.finished() {
			break
		}
	}
	if s.cursor.kind == someOrders {
		for _, token := range s.cursor.set.unknown() {
			body = appendUnknownFrame(body, token)
			unknown++
		}
	}
	return append(body, events...), frames, unknown
}

// cancel takes a stream that was never handed over out of its shard.
func (h *Hub) cancel(s *stream) { s.shard.post(job{op: opEnd, stream: s, why: endCancelled}) }

// Unavailable answers a stream request that cannot be served now, because
// the database is out of reach: a 200 that tells the browser to come back
// after the retry delay.
func (h *Hub) Unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client has gone: nobody to answer
	}
	h.log.Warn("stream refused for now", "err", err)
	h.answer(w, h.opts.Retry, "temporarily unavailable; retrying")
}

// TurnAwayWhileDraining answers a stream request as Serve would while the
// hub drains, telling the browser to come back after a random part of the
// retry delay, and reports whether it did. Handlers ask it before any query
// of theirs: when every client of a process that is going reconnects at
// once, those that reach it again cost its database nothing.
func (h *Hub) TurnAwayWhileDraining(w http.ResponseWriter) bool {
	if !h.Draining() {
		return false
	}
	h.refuse(w, refusedDraining)
	return true
}

// refuse turns a stream away, with a retry delay that suits the reason.
func (h *Hub) refuse(w http.ResponseWriter, why refusal) {
	h.metrics.refused.WithLabelValues(string(why)).Inc()
	if why == refusedDraining {
		h.answer(w, h.drainRetry(0), "this server is restarting; reconnect to resume")
		return
	}
	if why == refusedClient {
		h.answer(w, h.opts.BusyRetry, "too many streams from your address; come back later")
		return
	}
	h.answer(w, h.opts.BusyRetry, "too many streams; come back later")
}

// answer writes a whole stream that holds only a retry delay and a
// comment saying why.
func (h *Hub) answer(w http.ResponseWriter, retry time.Duration, why string) {
	rc := http.NewResponseController(w)
	writeHeader(w, rc)
	_ = writeAndFlush(w, rc, sse.AppendComment(sse.AppendRetry(nil, retry), why), h.opts.WriteTimeout)
}

// writeHeader sends an event stream's headers.
func writeHeader(w http.ResponseWriter, rc *http.ResponseController) {
	// The server's read timeout would otherwise end a long stream.
	_ = rc.SetReadDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

// writeAndFlush writes b and sends it to the client now, within timeout.
// The deadline is cleared afterwards: on HTTP/2 a deadline that passes
// resets the stream even while nothing is being written.
func writeAndFlush(w http.ResponseWriter, rc *http.ResponseController, b []byte, timeout time.Duration) error {
	_ = rc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil {
		return err
	}
	_ = rc.SetWriteDeadline(time.Time{})
	return nil
}
