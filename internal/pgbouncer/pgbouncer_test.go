package pgbouncer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordertracker/ordertracker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect through pgbouncer: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestTwoClientsShareOneServerSession(t *testing.T) {
	t.Parallel()
	pooled := StartWith(t, pgtest.NewDatabase(t), Options{PoolSize: 1})
	a := connect(t, pooled, pgx.QueryExecModeExec)
	b := connect(t, pooled, pgx.QueryExecModeExec)
	var pidA, pidB int32
	if err := a.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pidA); err != nil {
		t.Fatal(err)
	}
	// In session mode b would wait for a to disconnect; in transaction mode
	// it gets the very server session a used.
	if err := b.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pidB); err != nil {
		t.Fatal(err)
	}
	if pidA != pidB {
		t.Errorf("the two clients ran on server sessions %d and %d, want one shared session: not transaction pooling", pidA, pidB)
	}
}

// TestCachedStatementsCollide reproduces the failure that a pooled
// DATABASE_URL meets with pgx's default exec mode, so that tests of the
// program behind this PgBouncer mean something.
func TestCachedStatementsCollide(t *testing.T) {
	t.Parallel()
	pooled := StartWith(t, pgtest.NewDatabase(t), Options{PoolSize: 1})
	a := connect(t, pooled, pgx.QueryExecModeCacheStatement)
	b := connect(t, pooled, pgx.QueryExecModeCacheStatement)
	const query = "SELECT $1::int + 1"
	var n int
	if err := a.QueryRow(t.Context(), query, 1).Scan(&n); err != nil {
		t.Fatal(err)
	}
	err := b.QueryRow(t.Context(), query, 1).Scan(&n)
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42P05" {
		t.Errorf("the second client's cached statement: got %v, want duplicate_prepared_statement (42P05)", err)
	}
}

func TestAMissingBinarySaysHowToInstallIt(t *testing.T) {
	t.Parallel()
	_, err := start("postgres://u:p@127.0.0.1:1/db", Options{Binary: "/nonexistent/pgbouncer"})
	if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), "apt-get install pgbouncer") {
		t.Errorf("got %v, want ErrNoBinary saying `apt-get install pgbouncer`", err)
	}
}
