package web

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// A flakyProxy is a reverse proxy in front of a test app that fails the
// ways real ones do, for the browser tests of how pages keep their streams:
// while failing it answers every request 502, as a proxy does while the
// upstream is being deployed (an answer on which EventSource gives up for
// good), and it can stall the streams that are open, so that their bytes
// stop without their connections closing, as when a laptop sleeps or a NAT
// forgets the flow.
type flakyProxy struct {
	server *httptest.Server

	mu      sync.Mutex
	target  *url.URL
	failing bool
	refused int                     // requests answered 502
	streams map[*proxiedStream]bool // event streams under way
}

// newFlakyProxy starts a proxy in front of target that passes everything
// through until told otherwise. The test's browser must use its URL.
func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	t.Helper()
	p := &flakyProxy{streams: make(map[*proxiedStream]bool)}
	p.switchTo(t, target)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			r.SetURL(p.target)
			p.mu.Unlock()
			r.Out.Host = r.In.Host // as nginx's proxy_set_header Host $http_host
		},
		// A text/event-stream response is flushed as it comes.
		ModifyResponse: func(res *http.Response) error {
			if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
				res.Body = p.follow(res.Request.Context(), res.Body)
			}
			return nil
		},
		// The streams it breaks and those that go away are no news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		failing := p.failing
		if failing {
			p.refused++
		}
		p.mu.Unlock()
		if failing {
			http.Error(w, "502 Bad Gateway: the upstream is being deployed", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		// A stalled stream would hold Close up for good: end them first.
		p.mu.Lock()
		for s := range p.streams {
			s.breakOff()
		}
		p.mu.Unlock()
		p.server.CloseClientConnections()
		p.server.Close()
	})
	return p
}

// URL is the proxy's address, for the browser.
func (p *flakyProxy) URL() string { return p.server.URL }

// fail makes the proxy answer every request 502 from now on, and breaks
// the event streams under way, as a deploy that takes the upstream away
// does: the browser's reconnect gets the 502.
func (p *flakyProxy) fail() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = true
	for s := range p.streams {
		s.breakOff()
	}
}

// switchTo sends every request from now on to target, and breaks the
// event streams under way, as replacing the process behind a proxy does.
func (p *flakyProxy) switchTo(t *testing.T, target string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = u
	for s := range p.streams {
		s.breakOff()
	}
}

// pass lets requests through again.
func (p *flakyProxy) pass() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = false
}

// refusals is how many requests the proxy has answered 502.
func (p *flakyProxy) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// stall stops the bytes of every event stream under way, without closing
// its connection: what the server sends from now on never arrives. Streams
// opened afterwards pass as usual.
func (p *flakyProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.streams {
		s.stall()
	}
}

func (p *flakyProxy) follow(ctx context.Context, body io.ReadCloser) *proxiedStream {
	s := &proxiedStream{body: body, ctx: ctx, proxy: p, stalled: make(chan struct{}), broken: make(chan struct{})}
	p.mu.Lock()
	p.streams[s] = true
	p.mu.Unlock()
	return s
}

// A proxiedStream is the body of an event stream on its way through the
// proxy.
type proxiedStream struct {
	body      io.ReadCloser
	ctx       context.Context // the request's: done when the browser goes
	proxy     *flakyProxy
	stalled   chan struct{} // closed by stall
	broken    chan struct{} // closed by breakOff
	breakOnce sync.Once
	stallOnce sync.Once
}

var errBrokenOff = errors.New("the proxy broke the stream off")

func (s *proxiedStream) Read(b []byte) (int, error) {
	if err := s.hold(); err != nil {
		return 0, err
	}
	n, err := s.body.Read(b)
	// Stalled while waiting: what arrived is never passed on.
	if err := s.hold(); err != nil {
		return 0, err
	}
	return n, err
}

// hold returns at once while the stream passes, and for a stalled one only
// when the stream ends.
func (s *proxiedStream) hold() error {
	select {
	case <-s.broken:
		return errBrokenOff
	default:
	}
	select {
	case <-s.stalled:
	default:
		return nil
	}
	select {
	case <-s.broken:
		return errBrokenOff
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *proxiedStream) stall() { s.stallOnce.Do(func() { close(s.stalled) }) }

// breakOff ends the stream abruptly: the browser sees its connection fail.
// Closing the upstream's body wakes a Read that waits on it.
func (s *proxiedStream) breakOff() {
	s.breakOnce.Do(func() {
		close(s.broken)
		s.body.Close()
	})
}

func (s *proxiedStream) Close() error {
	s.proxy.mu.Lock()
	delete(s.proxy.streams, s)
	s.proxy.mu.Unlock()
	return s.body.Close()
}
