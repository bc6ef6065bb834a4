// Package pgtest gives every test its own PostgreSQL database, so that tests
// can run in parallel and never see each other's rows or notifications
// (LISTEN/NOTIFY is per database).
//
// A test binary opts in with
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Main starts a throwaway server from the machine's PostgreSQL binaries (or
// uses the one TEST_DATABASE_URL names) and makes a template database with
// every migration applied; each NewDatabase is then a copy of that template.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pglocal"
	"github.com/ordertracker/ordertracker/migrations"
)

// EnvURL names the environment variable that points the tests at a server of
// one's own instead of a throwaway one. Its user must be allowed to CREATE
// DATABASE; the tests create and drop databases named pgt_*.
const EnvURL = "TEST_DATABASE_URL"

// fastCopyStrategy is how PostgreSQL 15 and later copy the template on a
// server that does not fsync (our throwaway one): FILE_COPY copies the files
// and checkpoints, which costs little without fsync, while WAL_LOG (the
// default since 15) writes every page of the copy to the WAL. Measured with
// BenchmarkNewDatabase: without fsync, on a RAM disk, 12 ms against 23 ms; on
// a server that fsyncs, FILE_COPY's checkpoints make it the slower, 270 ms
// against 200 ms, so there the server's default stands.
const fastCopyStrategy = "FILE_COPY"

var (
	mainCalled atomic.Bool
	setupOnce  sync.Once
	theEnv     *env // set by setupOnce
	setupErr   error
)

// env is the server and template shared by the tests of one binary.
type env struct {
	cluster   *pglocal.Cluster // nil when TEST_DATABASE_URL names the server
	adminURL  string           // superuser, maintenance database; holds a password
	admin     *pgxpool.Pool
	prefix    string // names this process's databases: pgt_3fa9c1_tmpl, pgt_3fa9c1_1, ...
	template  string
	strategy  string // a STRATEGY for CREATE DATABASE, or "" for the server's default
	versionNo int    // server_version_num
	seq       atomic.Int64
	startup   time.Duration

	// createMu serialises CREATE DATABASE in this process: it keeps
	// concurrent copies of one template from contending, and its waits are
	// shorter than a retry's backoff.
	createMu sync.Mutex
}

// Main sets up the test database server, runs the tests and tears it down,
// then exits with the tests' code. Call it from TestMain. When no server can
// be had it prints what to do and exits with code 1: tests that need a
// database are never skipped.
//
// Under `go test -list` and in the worker processes of `go test -fuzz`, the
// server is started only if a test asks for a database.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that has more to tear down before it exits:
// it returns the code to exit with.
func Run(m *testing.M) int {
	mainCalled.Store(true)
	flag.Parse() // to see -test.v, -test.list and -test.fuzzworker before m.Run
	waitBound()
	if !lazy() {
		e, err := setup()
		if err != nil {
			fmt.Fprintln(os.Stderr, failureMessage(err))
			return 1
		}
		if testing.Verbose() {
			fmt.Printf("pgtest: %s ready in %v\n", e.describe(), e.startup.Round(time.Millisecond))
		}
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// minParallel is how many parallel tests a package that uses a database
// runs at once, at least, unless -parallel says otherwise: such tests spend
// most of their time waiting on PostgreSQL (and some on a browser or a
// stream), so the default of one per CPU leaves a 2-core machine idle.
const minParallel = 4

// waitBound raises -test.parallel to minParallel when the command line
// does not set it.
func waitBound() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if f := flag.Lookup("test.parallel"); f != nil && !set {
		if n, err := strconv.Atoi(f.Value.String()); err == nil && n < minParallel {
			f.Value.Set(strconv.Itoa(minParallel))
		}
	}
}

// lazy reports whether this run of the binary may well need no database.
func lazy() bool {
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return true
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return true
	}
	return false
}

// NewDatabase creates a database for this test alone, with every migration
// applied, and returns its URL (with the superuser's credentials). The
// database is dropped when the test ends, closing any connection left open.
// It is safe to call from parallel tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	e := environment(t)
	return e.newDatabase(t, e.template)
}

// NewEmptyDatabase is like NewDatabase, but the database has no migrations
// applied and no tables, for testing the migrations themselves.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return environment(t).newDatabase(t, "template0")
}

// NewPool creates a database as NewDatabase does and returns a pool of
// connections to it, closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// AdminURL returns a superuser URL of the server's maintenance database, for
// tests that act on the whole server, such as ending other sessions with
// pg_terminate_backend. Tests must not change what other tests rely on.
func AdminURL(t testing.TB) string {
	t.Helper()
	return environment(t).adminURL
}

// environment returns the shared environment, setting it up on first use,
// and fails the test with instructions if there is none.
func environment(t testing.TB) *env {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main: func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	e, err := setup()
	if err != nil {
		t.Fatal(failureMessage(err))
	}
	return e
}

// setup starts or reaches the server and makes the template, once.
func setup() (*env, error) {
	setupOnce.Do(func() { theEnv, setupErr = newEnv() })
	return theEnv, setupErr
}

// newEnv starts or reaches the server and makes the template.
func newEnv() (_ *env, err error) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	e := &env{adminURL: os.Getenv(EnvURL)}
	defer func() {
		if err != nil {
			e.close(context.WithoutCancel(ctx))
		}
	}()
	if e.adminURL == "" {
		opts := pglocal.Options{Ephemeral: true}
		if dir, err := os.UserCacheDir(); err == nil {
			opts.CacheDir = filepath.Join(dir, "ordertracker", "pglocal")
		}
		if e.cluster, err = pglocal.Start(ctx, opts); err != nil {
			return nil, err
		}
		e.adminURL = e.cluster.URL("postgres")
	}
	cfg, err := pgxpool.ParseConfig(e.adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvURL, err) // pgx's message leaves out the password
	}
	cfg.MaxConns = 4
	// A test may end every other session (to test reconnecting); a ping
	// on each acquire finds the ended ones before a statement does.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	if e.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open admin pool: %w", err)
	}
	if err := e.admin.Ping(ctx); err != nil {
		return nil, fmt.Errorf("connect to the server: %w", err)
	}
	if err := e.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&e.versionNo); err != nil {
		return nil, fmt.Errorf("ask server version: %w", err)
	}
	if e.versionNo < 130000 {
		return nil, fmt.Errorf("the server runs PostgreSQL %s, and the tests need 13 or later (for DROP DATABASE ... WITH (FORCE))", e.version())
	}
	var fsync string
	if err := e.admin.QueryRow(ctx, "SELECT current_setting('fsync')").Scan(&fsync); err != nil {
		return nil, fmt.Errorf("ask server settings: %w", err)
	}
	if e.versionNo >= 150000 && fsync == "off" {
		e.strategy = fastCopyStrategy
	}
	if err := e.makeTemplate(ctx); err != nil {
		return nil, err
	}
	e.startup = time.Since(began)
	return e, nil
}

// makeTemplate creates this process's template database and migrates it.
// Several test binaries may share a server, so the names carry a random
// part; a clash, however unlikely, just draws again.
func (e *env) makeTemplate(ctx context.Context) error {
	for {
		e.prefix = "pgt_" + randomHex(3)
		e.template = e.prefix + "_tmpl"
		_, err := e.admin.Exec(ctx, "CREATE DATABASE "+ident(e.template)+" TEMPLATE template0 ENCODING 'UTF8'")
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P04" { // duplicate_database
			continue
		}
		if err != nil {
			return fmt.Errorf("create template database (the server's user must be allowed to CREATE DATABASE): %w", err)
		}
		break
	}
	conn, err := pgx.Connect(ctx, e.url(e.template))
	if err != nil {
		return fmt.Errorf("connect to template database: %w", err)
	}
	_, err = migrations.Apply(ctx, conn)
	if cerr := conn.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	// Nobody may connect to the template any more: a connection to it
	// would make every CREATE DATABASE from it fail with 55006.
	if _, err := e.admin.Exec(ctx, "ALTER DATABASE "+ident(e.template)+" ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("close template database to connections: %w", err)
	}
	return nil
}

// newDatabase creates a database from template for the test and drops it
// when the test ends.
func (e *env) newDatabase(t testing.TB, template string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, err := e.create(ctx, template, e.strategy)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is done before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.drop(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return e.url(name)
}

// create makes a database from template and returns its name. It retries
// while another session is connected to the template (SQLSTATE 55006,
// object_in_use), which a session of another process can cause at any time
// on a shared server, and once or twice if the admin connection broke.
func (e *env) create(ctx context.Context, template, strategy string) (string, error) {
	e.createMu.Lock()
	defer e.createMu.Unlock()
	sql := "CREATE DATABASE %s TEMPLATE " + ident(template)
	if strategy != "" {
		sql += " STRATEGY " + strategy
	}
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		name := fmt.Sprintf("%s_%d", e.prefix, e.seq.Add(1))
		_, err := e.admin.Exec(ctx, fmt.Sprintf(sql, ident(name)))
		if err == nil {
			return name, nil
		}
		pgErr, isPgErr := errors.AsType[*pgconn.PgError](err)
		switch {
		case isPgErr && pgErr.Code == "55006": // object_in_use
		case isPgErr && pgErr.Code == "42P04": // duplicate_database
			continue
		case !isPgErr && attempt < 3 && ctx.Err() == nil: // the pool replaces a broken connection
		default:
			return "", fmt.Errorf("create database from %s: %w", template, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("create database from %s: gave up after %d attempts: %w", template, attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// drop drops a database, ending any sessions still connected to it.
func (e *env) drop(ctx context.Context, name string) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if _, err = e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err == nil {
			return nil
		}
		if _, isPgErr := errors.AsType[*pgconn.PgError](err); isPgErr || ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("drop database %s: %w", name, err)
}

// teardown drops the template and stops the server.
func teardown() error {
	if theEnv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return theEnv.close(ctx)
}

// close undoes whatever of newEnv was done. On a server of one's own it
// drops the template and any database a failed cleanup left behind; a
// throwaway server goes as a whole.
func (e *env) close(ctx context.Context) error {
	var errs []error
	if e.admin != nil {
		if e.cluster == nil && e.template != "" {
			rows, _ := e.admin.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", e.prefix+"_")
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				errs = append(errs, fmt.Errorf("list test databases: %w", err))
			}
			for _, name := range names {
				if err := e.drop(ctx, name); err != nil {
					errs = append(errs, err)
				}
			}
		}
		e.admin.Close()
	}
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// url returns the URL of the named database on the server: adminURL with the
// database replaced. TEST_DATABASE_URL may be a URL or keyword=value pairs.
func (e *env) url(database string) string {
	if strings.HasPrefix(e.adminURL, "postgres://") || strings.HasPrefix(e.adminURL, "postgresql://") {
		u, err := url.Parse(e.adminURL)
		if err == nil {
			u.Path, u.RawPath = "/"+database, ""
			return u.String()
		}
	}
	return e.adminURL + " dbname=" + database // a later key wins
}

// describe says which server the tests use, without credentials.
func (e *env) describe() string {
	where := "the server " + EnvURL + " names"
	if e.cluster != nil {
		where = fmt.Sprintf("a throwaway server on 127.0.0.1:%d", e.cluster.Port())
	}
	return fmt.Sprintf("PostgreSQL %s, %s, template %s,", e.version(), where, e.template)
}

// version returns the server's version number as people write it.
func (e *env) version() string {
	if e.versionNo >= 100000 {
		return fmt.Sprintf("%d.%d", e.versionNo/10000, e.versionNo%10000)
	}
	return fmt.Sprintf("%d.%d.%d", e.versionNo/10000, e.versionNo/100%100, e.versionNo%100)
}

// ident quotes an SQL identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// randomHex returns 2n random hexadecimal digits.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// failureMessage explains, loudly and with the fix, why there is no database.
func failureMessage(err error) string {
	const fix = `Fix it one of two ways:
  - install PostgreSQL's server binaries, which the tests start a throwaway
    server from (nothing needs to be running):
        apt-get install -y postgresql        (Debian, Ubuntu)
        brew install postgresql              (macOS)
  - or point the tests at a server you run, whose user may CREATE DATABASE:
        ` + EnvURL + `=postgres://USER:PASSWORD@127.0.0.1:5432/postgres?sslmode=disable`
	if os.Getenv(EnvURL) != "" {
		return fmt.Sprintf("\npgtest: FAIL: %s is set, but the tests cannot use its server: %v\n"+
			"Fix %s (its user must be allowed to CREATE DATABASE), or unset it to have the tests\n"+
			"start a throwaway server from PostgreSQL's server binaries.\n", EnvURL, err, EnvURL)
	}
	if errors.Is(err, pglocal.ErrNoBinaries) {
		return "\npgtest: FAIL: these tests need PostgreSQL, and no server binaries (initdb, pg_ctl, postgres) were found\n" +
			"on PATH, via pg_config --bindir, or in /usr/lib/postgresql/*/bin.\n" + fix + "\n"
	}
	return fmt.Sprintf("\npgtest: FAIL: these tests need PostgreSQL, and none could be had: %v\n%s\n", err, fix)
}
