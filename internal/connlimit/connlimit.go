// Package connlimit caps the connections an HTTP server holds open, in all
// and per client address, so that no client, however many connections it
// opens or however slowly it sends on them, can use up the process's open
// files and shut everyone else out.
//
// It counts the connections that net/http still serves: new, active and
// idle ones. A connection taken over by an event stream (hijacked) leaves
// that count for good: streams have a budget of their own (MAX_STREAMS),
// kept by the hub that holds them.
package connlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordertracker/ordertracker/internal/clientaddr"
)

// Options are a Listener's limits.
type Options struct {
	// Max is the most connections open at once, not counting streams.
	// At Max, Accept waits for one to close, leaving new ones in the
	// kernel's backlog, where they cost no file. Zero means no cap.
	Max int
	// PerClient is the most of those from one client address
	// (clientaddr.KeyOf: an IPv6 client by its /64). A connection past it
	// is closed at once. Zero means no cap per client.
	PerClient int
	// Trusted peers are exempt from PerClient: a reverse proxy carries
	// every client's requests over its own connections, and can limit
	// connections per client itself.
	Trusted clientaddr.Proxies
	// Logger hears of refused connections, at most every few seconds.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// A Listener is a net.Listener that keeps to Options. Hand its ConnState to
// the http.Server that serves it. Its zero value is not usable; call
// NewListener.
type Listener struct {
	net.Listener
	opts Options
	log  *slog.Logger
	// logEvery limits the lines about refusals to one every few seconds.
	logEvery *rate.Limiter

	mu       sync.Mutex
	wake     sync.Cond // signalled when open falls or the listener closes
	open     int       // connections net/http serves
	idle     int       // of which idle, between requests
	byClient map[string]int
	refused  int // connections refused since the last line about them
	closed   bool
	// pressure is whether open has reached the high-water mark, 7/8 of
	// Max, and not yet fallen back to 3/4 of it.
	pressure   bool
	onPressure func(high bool)
	kick       chan struct{}
	done       chan struct{}
}

// NewListener wraps ln with the limits of opts.
func NewListener(ln net.Listener, opts Options) *Listener {
	l := &Listener{
		Listener: ln,
		opts:     opts,
		log:      opts.Logger,
		logEvery: rate.NewLimiter(rate.Every(10*time.Second), 1),
		byClient: make(map[string]int),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.wake.L = &l.mu
	return l
}

// OnPressure has f called, from a goroutine of the listener's own and one
// call at a time, with true when the open connections reach 7/8 of Max, and
// with false when they are back to 3/4. An http.Server gives it
// SetKeepAlivesEnabled(!high): its idle keep-alive connections are then
// closed at once, and every answer closes its connection, until the rush is
// over. Call it before the first Accept.
func (l *Listener) OnPressure(f func(high bool)) {
	l.onPressure = f
	go l.relayPressure()
}

// relayPressure calls onPressure with each change of l.pressure, outside
// l.mu: the server closes idle connections under a lock of its own, and
// their Close takes l.mu.
func (l *Listener) relayPressure() {
	told := false
	for {
		select {
		case <-l.done:
			return
		case <-l.kick:
		}
		l.mu.Lock()
		now := l.pressure
		l.mu.Unlock()
		if now != told {
			l.onPressure(now)
			told = now
		}
	}
}

// Accept waits until fewer than Max connections are open, then returns the
// next connection whose client has fewer than PerClient open.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		for l.opts.Max > 0 && l.open >= l.opts.Max && !l.closed {
			l.wake.Wait()
		}
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ""
		if peer := clientaddr.PeerOf(c.RemoteAddr().String()); peer.IsValid() && !l.opts.Trusted.Trusts(peer) {
			key = clientaddr.KeyOf(peer)
		}
		l.mu.Lock()
		if key != "" && l.opts.PerClient > 0 && l.byClient[key] >= l.opts.PerClient {
			l.refused++
			l.mu.Unlock()
			c.Close()
			l.reportRefusal(key)
			continue
		}
		l.open++
		if key != "" {
			l.byClient[key]++
		}
		l.updatePressure()
		l.mu.Unlock()
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

// reportRefusal logs refused connections, one line every few seconds at
// most however many there are.
func (l *Listener) reportRefusal(key string) {
	if !l.logEvery.Allow() {
		return
	}
	l.mu.Lock()
	n := l.refused
	l.refused = 0
	l.mu.Unlock()
	l.log.Warn("refused connections: too many open from one client address",
		"client", key, "per_client", l.opts.PerClient, "refused", n)
}

// updatePressure moves l.pressure past the high- or low-water mark and
// tells relayPressure. l.mu must be held.
func (l *Listener) updatePressure() {
	if l.opts.Max == 0 || l.onPressure == nil {
		return
	}
	high, low := l.opts.Max-l.opts.Max/8, l.opts.Max-l.opts.Max/4
	switch {
	case !l.pressure && l.open >= high:
		l.pressure = true
	case l.pressure && l.open <= low:
		l.pressure = false
	default:
		return
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// ConnState is the http.Server's ConnState hook. It counts idle
// connections, takes a connection taken over by a stream out of the open
// count, and closes a connection that turns idle under
// pressure: one whose answer went out just before keep-alives were turned
// off, which the server's own sweep of idle connections missed.
func (l *Listener) ConnState(nc net.Conn, state http.ConnState) {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok || c.l != l {
		return
	}
	l.mu.Lock()
	if c.released || c.hijacked {
		l.mu.Unlock()
		return
	}
	if c.idle {
		l.idle--
	}
	c.idle = state == http.StateIdle
	switch state {
	case http.StateIdle:
		l.idle++
		pressure := l.pressure
		l.mu.Unlock()
		// Nothing is in flight on a connection as it turns idle, so
		// closing it here loses no request.
		if pressure {
			nc.Close()
		}
		return
	case http.StateHijacked:
		c.hijacked = true
		l.leave(c)
	}
	l.mu.Unlock()
}

// leave takes c out of the open count. l.mu must be held.
func (l *Listener) leave(c *conn) {
	l.open--
	if c.key != "" {
		if l.byClient[c.key]--; l.byClient[c.key] <= 0 {
			delete(l.byClient, c.key)
		}
	}
	l.updatePressure()
	l.wake.Signal()
}

// release counts c as closed.
func (l *Listener) release(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	if c.idle {
		l.idle--
	}
	if !c.hijacked {
		l.leave(c)
	}
}

// Stats are a Listener's counts.
type Stats struct {
	Open    int // connections net/http serves
	Idle    int // of which idle, kept alive between requests
	Clients int // client addresses with connections open, not counting trusted proxies
}

// Stats returns the counts as they are now.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Open: l.open, Idle: l.idle, Clients: len(l.byClient)}
}

// Close stops accepting: a waiting Accept returns net.ErrClosed.
// Connections already open stay open.
func (l *Listener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
		l.wake.Broadcast()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// A conn is an accepted connection, counted until it closes.
type conn struct {
	net.Conn
	l *Listener
	// key is the client address it counts under; empty for a trusted
	// proxy.
	key string
	// idle, hijacked and released are guarded by l.mu.
	idle     bool
	hijacked bool
	released bool
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.l.release(c)
	return err
}

// File hands on the socket's File, with which a stream takes a
// descriptor of its own to write to without waiting.
func (c *conn) File() (*os.File, error) {
	fc, ok := c.Conn.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return fc.File()
}

// CloseWrite hands on a half-close, with which net/http ends a connection
// gracefully.
func (c *conn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.ErrUnsupported
	}
	return cw.CloseWrite()
}

// ReadFrom hands on sendfile and splice, with which net/http copies files.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
