package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/migrations"
	"github.com/ordertracker/ordertracker/orders"
	"github.com/ordertracker/ordertracker/web"
)

const usage = `usage: ordertracker [command]

Commands:
  (none)    run the web server and the status worker in one process
  web       run the web server
  worker    run the status worker
  migrate   bring the database schema up to date and exit
  staff     manage staff accounts: staff add|list|remove|password [NAME]
            (run "ordertracker staff help" for more)
  healthcheck  exit 0 if the web server on ADDR is ready, 1 if not (for
            container healthchecks in images without curl)

Configuration is read from environment variables; see README.md.`

// run is the whole program: it reads its configuration, opens the database,
// applies migrations, and runs the roles named by args until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	command := ""
	if len(args) > 0 {
		command = args[0]
	}
	var staffCmd staffCommand
	switch command {
	case "", "web", "worker", "migrate", "healthcheck":
	case "staff":
		var err error
		if staffCmd, err = parseStaffArgs(args[1:]); err != nil {
			return err
		}
		args = args[:1]
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n\n%s", command, usage)
	}
	if len(args) > 1 {
		return fmt.Errorf("unexpected arguments after %q: %q\n\n%s", command, args[1:], usage)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if command == "healthcheck" {
		return healthcheck(ctx, cfg)
	}
	log := newLogger(stderr, cfg)

	db, closeDB, err := openDatabase(ctx, cfg, stdout, log)
	if err != nil {
		return err
	}
	defer closeDB()
	pool := db.pool
	if err := migrate(ctx, db.direct, log); err != nil {
		return err
	}
	if command == "migrate" {
		fmt.Fprintln(stdout, "The database schema is up to date.")
		return nil
	}
	accts := accounts.NewStore(pool)
	if command == "staff" {
		return runStaff(ctx, staffCmd, accts, stdin, stdout)
	}

	store := orders.NewStore(pool, orders.Options{Stages: cfg.stages})
	listener := newListener(db, cfg, log)
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	listener.From(head)
	g, ctx := errgroup.WithContext(ctx)
	var worker *orders.Worker
	if command == "" || command == "worker" {
		worker = orders.NewWorker(store, orders.WorkerOptions{Batch: cfg.workerBatch, Logger: log})
		listener.Handle(worker.WakeOn)
		g.Go(func() error { return worker.Run(ctx) })
	}
	metrics := newRegistry(store, listener, worker)
	if command == "" || command == "web" {
		hub := stream.NewHub(stream.Options{
			Heartbeat:           cfg.heartbeat,
			Retry:               cfg.retry,
			MaxStreams:          cfg.maxStreams,
			MaxStreamsPerClient: cfg.perClient,
			ClientKey:           clientaddr.Key,
			Window:              cfg.window,
			WindowAge:           cfg.windowAge,
			Logger:              log,
		})
		// The replay window starts with the log's latest events, so that
		// the clients of a process this one replaces resume from memory.
		var recent []orders.Event
		if cfg.window > 0 {
			if recent, err = store.Recent(ctx, head, cfg.window, cfg.windowAge); err != nil {
				return err
			}
		}
		hub.PublishFrom(head, recent)
		listener.Handle(hub.Publish)
		if err := bootstrapStaff(ctx, cfg, accts, stdout, log); err != nil {
			return err
		}
		staff := web.StaffConfig{
			Accounts:        accts,
			Sessions:        pgxstore.NewWithCleanupInterval(pool, 0),
			SessionLifetime: cfg.sessionLifetime,
			SecureCookie:    cfg.secureCookie,
		}
		g.Go(func() error { return expireSessions(ctx, pool, accts, log) })
		app := web.NewHandler(store, hub, readinessChecks(pool, listener, hub), web.Config{
			Metrics: metrics,
			Staff:   staff,

			TrustedProxies: cfg.trustedProxies,
			OrderLimit:     cfg.orderLimit,
			Demo:           demoConfig(cfg, listener, pool, worker),
		}, log)
		g.Go(func() error { return app.Run(ctx) })
		var handler http.Handler = app
		if cfg.metricsAddr != "" {
			handler = withoutMetrics(app)
		}
		g.Go(func() error { return serve(ctx, cfg, handler, hub, stdout, log) })
	}
	if cfg.metricsAddr != "" {
		g.Go(func() error { return serveMetrics(ctx, cfg.metricsAddr, metrics, stdout, log) })
	}
	g.Go(func() error { return listener.Run(ctx) })
	return g.Wait()
}

// listenerFix is what a listener that cannot hear tells the operator to do.
const listenerFix = "LISTEN needs a session of its own on the primary: " +
	"set DATABASE_DIRECT_URL to a direct connection to it, not a transaction pooler or a standby (see README, Deploying)"

// newListener returns the process's listener: LISTEN on the direct session,
// probes through the pool, which is the way the writers' notifications go.
func newListener(db database, cfg config, log *slog.Logger) *orders.Listener {
	l := orders.NewListener(db.direct, log)
	l.Probe(db.pool, orders.ProbeOptions{Interval: cfg.probeInterval, Timeout: cfg.probeTimeout, Fix: listenerFix})
	return l
}

// errShuttingDown is what /readyz says of a process that has begun to
// drain: send it nothing new.
var errShuttingDown = errors.New("shutting down: its streams are being ended and new ones are sent elsewhere")

// readinessChecks are what /readyz asks: the database answers, the LISTEN
// connection is up and hears its own probes, and no migration is pending.
func readinessChecks(pool *pgxpool.Pool, listener *orders.Listener, hub *stream.Hub) []web.Check {
	return []web.Check{
		// First, and without a query: a load balancer that asks while the
		// process drains must hear "no" at once.
		{Name: "serving", Run: func(context.Context) error {
			if hub.Draining() {
				return errShuttingDown
			}
			return nil
		}},
		{Name: "database", Run: func(ctx context.Context) error { return pool.Ping(ctx) }},
		{Name: "listener", Run: func(context.Context) error { return listener.Ready() }},
		{Name: "migrations", Run: func(ctx context.Context) error {
			n, err := migrations.Pending(ctx, pool)
			if err == nil && n > 0 {
				err = fmt.Errorf("%d pending", n)
			}
			return err
		}},
	}
}

// bootstrapStaff makes sure that STAFF_PASSWORD, when set, signs in as the
// account "staff" (accounts.BootstrapName), for demos that sign in with one
// known password: it creates the account or gives it that password (which
// ends its sessions), and leaves it alone when it already has it. Only on
// its private development database (no DATABASE_URL), and only while there
// is no account at all, may the program make up a password, which it
// prints once.
func bootstrapStaff(ctx context.Context, cfg config, accts *accounts.Store, stdout io.Writer, log *slog.Logger) error {
	password, from := cfg.staffPassword, "STAFF_PASSWORD"
	if password == "" {
		if cfg.databaseURL != "" {
			return nil
		}
		some, err := accts.Any(ctx)
		if err != nil || some {
			return err
		}
		password, from = rand.Text(), "a password made up for this run"
		fmt.Fprintf(stdout, "Staff sign-in for this run: name %s, password %s (set STAFF_PASSWORD to choose one, or run: ordertracker staff add NAME)\n",
			accounts.BootstrapName, password)
	}
	did, err := accts.Bootstrap(ctx, accounts.BootstrapName, password)
	if err != nil {
		return fmt.Errorf("STAFF_PASSWORD: make the account %q: %w", accounts.BootstrapName, err)
	}
	if did != accounts.BootstrapUnchanged {
		log.Info("staff account", "account", accounts.BootstrapName, "did", string(did), "from", from)
	}
	return nil
}

// serve runs the HTTP server until ctx is done, then shuts it down: the
// event streams first, which the hub ends (they would otherwise keep the
// server waiting for hours), then everything else within the shutdown
// timeout.
func serve(ctx context.Context, cfg config, handler http.Handler, hub *stream.Hub, stdout io.Writer, log *slog.Logger) error {
	ln, err := listenHTTP(cfg, log)
	if err != nil {
		return err
	}
	srv := newHTTPServer(handler, ln, log)
	scheme := "http"
	if cfg.tlsCert != "" {
		// HTTPS, where browsers speak HTTP/2 and every tab's stream shares
		// one connection.
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS_CERT_FILE and TLS_KEY_FILE: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	fmt.Fprintf(stdout, "Listening on %s://%s\n", scheme, displayAddr(ln.Addr()))

	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining streams", "drain", cfg.drain, "timeout", cfg.shutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.drain+cfg.shutdownGrace)
	defer cancel()
	// Streams first, spread over the drain time, so that their browsers
	// come back to the other processes a few at a time (/readyz already
	// says this one is going). The hub ends every one of them, HTTP/2
	// ones included, whose handlers then return, so that Shutdown has
	// only ordinary requests left to wait for.
	hub.Drain(shutdownCtx, cfg.drain)
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}

// withoutMetrics answers 404 for /metrics on the main listener when metrics
// are served on a listener of their own (METRICS_ADDR), so that they can be
// kept from the public.
func withoutMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveMetrics serves /metrics alone on addr until ctx is done.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, stdout io.Writer, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for metrics on METRICS_ADDR=%s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "Metrics on http://%s/metrics\n", displayAddr(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shut down metrics: %w", err)
	}
	return nil
}

// displayAddr turns a listening address into one a person can open.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
		return a.String()
	}
	return tcp.String()
}

// migrate applies the embedded migrations on a session of its own: the
// migration lock belongs to a session, which a transaction pooler would
// hand to someone else after every statement.
func migrate(ctx context.Context, direct *pgx.ConnConfig, log *slog.Logger) error {
	conn, err := pgx.ConnectConfig(ctx, direct)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	n, err := migrations.Apply(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if n > 0 {
		log.Info("applied migrations", "count", n)
	}
	return nil
}

// deleteExpiredSessions deletes the staff sessions that have run out.
const deleteExpiredSessions = `DELETE FROM sessions WHERE expiry < now()`

// expireSessions deletes expired staff sessions, and the accounts' records
// of them, every few minutes until ctx is done. The session store can do
// this itself, but its own goroutine cannot be stopped without a data race
// (StopCleanup reads a field the goroutine writes), so it is turned off and
// the job runs here.
func expireSessions(ctx context.Context, pool *pgxpool.Pool, accts *accounts.Store, log *slog.Logger) error {
	tick := time.NewTicker(5 * time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := pool.Exec(ctx, deleteExpiredSessions); err != nil && ctx.Err() == nil {
				log.Warn("delete expired staff sessions", "err", err)
			}
			if err := accts.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
				log.Warn("delete expired staff sign-ins", "err", err)
			}
		}
	}
}

// healthcheck asks the web server on this machine's ADDR whether it is
// ready: the container image has no curl or shell to do it.
func healthcheck(ctx context.Context, cfg config) error {
	_, port, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return fmt.Errorf("healthcheck: ADDR=%q: %w", cfg.addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz answered %s", resp.Status)
	}
	return nil
}

// demoConfig is the demo page's controls (DEMO_CONTROLS): the listener
// and, when this process runs one, the worker that they break.
func demoConfig(cfg config, listener *orders.Listener, pool *pgxpool.Pool, worker *orders.Worker) web.DemoConfig {
	d := web.DemoConfig{Controls: cfg.demoControls, Listener: web.ListenerOn(listener, pool)}
	if worker != nil {
		d.Worker = worker
	}
	return d
}
