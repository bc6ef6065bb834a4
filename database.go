package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pglocal"
)

// noDatabase is said when there is neither a DATABASE_URL nor a PostgreSQL
// installation to start a private server from.
const noDatabase = `No database: DATABASE_URL is not set, and no PostgreSQL server binaries were found
(looked on PATH, through pg_config, and in /usr/lib/postgresql/*/bin) to start a private one.
Do one of these: install PostgreSQL (on Debian or Ubuntu: apt-get install postgresql), and
run again to get a private server in ./.data; or set DATABASE_URL=postgres://user:pass@host/db;
or run the whole demo with "docker compose up".`

// A database is the program's two ways to PostgreSQL: a pool for every
// query, which may go through a transaction-mode pooler, and the
// configuration of a session of its own for what needs one, LISTEN and the
// migration lock.
type database struct {
	pool   *pgxpool.Pool
	direct *pgx.ConnConfig
}

// openDatabase connects to DATABASE_URL (and learns how to reach
// DATABASE_DIRECT_URL), or, without one, starts a private PostgreSQL under
// the data directory and says so. The returned function closes the pool and
// stops that server.
func openDatabase(ctx context.Context, cfg config, stdout io.Writer, log *slog.Logger) (database, func(), error) {
	url, directURL := cfg.databaseURL, cfg.databaseDirectURL
	stop := func() {}
	if url == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.dataDir, "postgres"))
		if err != nil {
			return database{}, nil, fmt.Errorf("private database: %w", err)
		}
		cluster, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, Log: stdout})
		if errors.Is(err, pglocal.ErrNoBinaries) {
			return database{}, nil, errors.New(noDatabase)
		}
		if err != nil {
			return database{}, nil, fmt.Errorf("start a private PostgreSQL (or set DATABASE_URL): %w", err)
		}
		stop = func() {
			if err := cluster.Stop(); err != nil {
				log.Warn("stop the private PostgreSQL", "err", err)
			}
		}
		url = cluster.URL("postgres")
	}
	if directURL == "" {
		directURL = url
	}
	db, err := connect(ctx, url, directURL, log)
	if err != nil {
		stop()
		return database{}, nil, err
	}
	return db, func() { db.pool.Close(); stop() }, nil
}

// connect opens the pool and the session configuration, each in the exec
// mode its URL needs (see execMode), after waiting, for a while, for the
// database to answer: in docker compose the database may still be starting.
func connect(ctx context.Context, url, directURL string, log *slog.Logger) (database, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return database{}, fmt.Errorf("DATABASE_URL: %w", err)
	}
	direct, err := pgx.ParseConfig(directURL)
	if err != nil {
		return database{}, fmt.Errorf("DATABASE_DIRECT_URL: %w", err)
	}
	pooled, err := waitForDatabase(ctx, pcfg.ConnConfig)
	if err != nil {
		return database{}, fmt.Errorf("connect to the database at %s: %w", pcfg.ConnConfig.Host, err)
	}
	directPooled := pooled
	if directURL != url {
		if directPooled, err = waitForDatabase(ctx, direct); err != nil {
			return database{}, fmt.Errorf("connect to DATABASE_DIRECT_URL's database at %s: %w", direct.Host, err)
		}
	}
	if mode, chosen := execMode(url, pooled); chosen {
		pcfg.ConnConfig.DefaultQueryExecMode = mode
		if pooled {
			log.Info("DATABASE_URL goes through a connection pooler; queries describe their statements instead of preparing them",
				"exec_mode", mode.String())
		}
	}
	if mode, chosen := execMode(directURL, directPooled); chosen {
		direct.DefaultQueryExecMode = mode
	}
	if directPooled {
		log.Warn("DATABASE_DIRECT_URL goes through a connection pooler (it defaults to DATABASE_URL): " +
			"LISTEN and the migration lock need a session of their own, which only a pooler in session mode keeps; " +
			"if this one pools transactions, set DATABASE_DIRECT_URL to a direct connection to the primary")
	}
	// Pool connections never LISTEN. Behind a transaction pooler, though, a
	// server session on which the listener once said LISTEN may serve any
	// of them, and pgx would keep the notifications it hears forever.
	pcfg.ConnConfig.OnNotification = func(*pgconn.PgConn, *pgconn.Notification) {}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return database{}, fmt.Errorf("connect to the database: %w", err)
	}
	return database{pool: pool, direct: direct}, nil
}

// waitForDatabase connects with config until the database answers, for up
// to 30 seconds, and reports whether the connection goes through a pooler.
func waitForDatabase(ctx context.Context, config *pgx.ConnConfig) (pooled bool, err error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pooled, err := behindPooler(ctx, config)
		if err == nil {
			return pooled, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// behindPooler reports whether connections made with config go through a
// pooler that hands out server sessions (PgBouncer, Supavisor, RDS Proxy,
// Neon's pooled endpoint). Such a pooler answers a client's start-up itself,
// with a process ID of its own making, so the server process that runs the
// client's queries is not the one the client was told about; a direct
// connection, or one through a plain TCP proxy, runs on the very process
// the server announced.
func behindPooler(ctx context.Context, config *pgx.ConnConfig) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var pid uint32
	// The simple protocol: no statement may be left behind on a session
	// that a pooler would hand to someone else.
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&pid); err != nil {
		return false, err
	}
	return pid != conn.PgConn().PID(), nil
}

// execMode is the exec mode for connections to url, and false when url
// chooses one itself (default_query_exec_mode=...), which stands.
//
// pgx's default prepares each statement once per connection under a name
// and reuses it: the fastest, and what a direct connection keeps. Behind a
// transaction pooler that predates protocol-level prepared statements
// (PgBouncer before 1.21, or later ones without max_prepared_statements),
// the next transaction may run on a server session that lacks the
// statement, or already has one of that name from another client
// ("prepared statement stmtcache_... already exists"). There, statements
// are described once per connection and then sent unnamed with each
// execution, which survives any change of server session and still takes a
// single round trip. pgx's other pooler-safe modes do not fit this
// program: exec and simple_protocol guess each parameter's type from its Go
// type and cannot send an order's items (a slice of structs) to a jsonb
// column; describe_exec takes two round trips, between which a pooler may
// change sessions. BenchmarkStoreGet measures the cost of each.
func execMode(url string, pooled bool) (pgx.QueryExecMode, bool) {
	if c, err := pgconn.ParseConfig(url); err == nil {
		if _, set := c.RuntimeParams["default_query_exec_mode"]; set {
			return 0, false
		}
	}
	if pooled {
		return pgx.QueryExecModeCacheDescribe, true
	}
	return pgx.QueryExecModeCacheStatement, true
}
