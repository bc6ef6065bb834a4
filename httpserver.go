package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordertracker/ordertracker/internal/connlimit"
)

// What a client may cost the server before a handler sees its request.
const (
	// maxHeaderBytes bounds a request's line and header. Chromium's
	// requests to this app measure 400 to 780 bytes, the largest being the
	// staff sign-in with its session cookie (BENCHMARKS.md, "Abuse"); a
	// site's other cookies, client hints and a proxy's X-Forwarded-*
	// lines may add a few KiB. 16 KiB is twenty times what a browser
	// sends and twice nginx's default buffer for one header line, yet a
	// sixty-fourth of Go's default of 1 MiB, which let 800 unfinished
	// headers take 2 GB. net/http reads 4 KiB past it before it answers
	// 431.
	maxHeaderBytes = 16 << 10
	// readHeaderTimeout is how long a client has to send its request
	// line and header, which a browser sends in one packet: it bounds how
	// long a client that sends nothing, or trickles, holds a connection.
	readHeaderTimeout = 5 * time.Second
	// readTimeout bounds reading a whole request, body included (16 KiB
	// for a form, 64 KiB for the JSON API): a body too slow for it is
	// answered 400.
	readTimeout = 30 * time.Second
	// idleTimeout is how long a keep-alive connection may wait for its
	// next request, when the server is not short of connections.
	idleTimeout = 2 * time.Minute
)

// listenHTTP listens on cfg.addr, with the connection limits of cfg:
// MAX_CONNS in all and MAX_CONNS_PER_CLIENT from one address (trusted
// proxies exempt), streams not counted.
func listenHTTP(cfg config, log *slog.Logger) (*connlimit.Listener, error) {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	return connlimit.NewListener(ln, connlimit.Options{
		Max:       cfg.maxConns,
		PerClient: cfg.maxConnsPerClient,
		Trusted:   cfg.trustedProxies,
		Logger:    log,
	}), nil
}

// newHTTPServer returns the server of handler on ln, with the limits that
// keep one client from costing the others: bounded header size and time,
// and, when ln runs short of connections, idle keep-alive connections
// closed and keep-alives off until the rush is over. There is no
// WriteTimeout: streams last for hours and set a deadline per write.
func newHTTPServer(handler http.Handler, ln *connlimit.Listener, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ConnState:         ln.ConnState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Under a flood the state may flip many times a second: one line
	// every few seconds says enough.
	say := rate.NewLimiter(rate.Every(10*time.Second), 2)
	ln.OnPressure(func(high bool) {
		if high && say.Allow() {
			log.Warn("short of connections: closing idle ones, keep-alives off until the rush is over", "open", ln.Stats().Open)
		}
		srv.SetKeepAlivesEnabled(!high)
	})
	return srv
}
