package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

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

// openDatabase connects to DATABASE_URL, or, without one, starts a private
// PostgreSQL under the data directory and says so. The returned function
// closes the pool and stops that server.
func openDatabase(ctx context.Context, cfg config, stdout io.Writer, log *slog.Logger) (*pgxpool.Pool, func(), error) {
	url := cfg.databaseURL
	stop := func() {}
	if url == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.dataDir, "postgres"))
		if err != nil {
			return nil, nil, fmt.Errorf("private database: %w", err)
		}
		cluster, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, Log: stdout})
		if errors.Is(err, pglocal.ErrNoBinaries) {
			return nil, nil, errors.New(noDatabase)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("start a private PostgreSQL (or set DATABASE_URL): %w", err)
		}
		stop = func() {
			if err := cluster.Stop(); err != nil {
				log.Warn("stop the private PostgreSQL", "err", err)
			}
		}
		url = cluster.URL("postgres")
	}
	pool, err := connect(ctx, url)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); stop() }, nil
}

// connect opens a pool and waits, for a while, for the database to answer:
// in docker compose the database may still be starting.
func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := pool.Ping(ctx)
		if err == nil {
			return pool, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			pool.Close()
			return nil, fmt.Errorf("connect to the database at %s: %w", pcfg.ConnConfig.Host, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
