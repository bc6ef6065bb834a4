// Package pgbouncer runs Debian's PgBouncer in transaction pooling mode in
// front of a test's PostgreSQL database, so that tests can show what the
// program does behind a pooler that hands each transaction whichever server
// connection is free: prepared statements, session advisory locks and LISTEN
// do not survive from one transaction to the next there.
//
//	direct := pgtest.NewDatabase(t)
//	pooled := pgbouncer.Start(t, direct)
//
// PgBouncer is started from /usr/sbin/pgbouncer (or the PATH), as the
// postgres user when the tests run as root (it refuses to run as root), on a
// free loopback port, with its configuration and password file in a
// temporary directory; it is stopped when the test ends. A missing binary
// fails the test with the command that installs it: such a test is never
// skipped.
package pgbouncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// debianPath is where Debian's package installs the binary, which is not on
// an ordinary user's PATH.
const debianPath = "/usr/sbin/pgbouncer"

// runAsUser is the account PgBouncer runs as when the tests run as root.
const runAsUser = "postgres"

// ErrNoBinary reports that PgBouncer is not installed; errors wrapping it
// say how to install it.
var ErrNoBinary = errors.New("pgbouncer is not installed")

// Options configure a PgBouncer.
type Options struct {
	// PoolSize is how many server connections PgBouncer keeps per database
	// and user; zero means 2. A pool smaller than the clients' makes
	// clients share server connections, which is what shows up a program
	// that relies on a session.
	PoolSize int
	// Binary is the pgbouncer program; empty means pgbouncer on the PATH,
	// else /usr/sbin/pgbouncer.
	Binary string
}

// Start starts PgBouncer in transaction mode in front of the database that
// databaseURL names and returns a URL of the same database, user and
// password through PgBouncer. PgBouncer stops when the test ends.
func Start(t testing.TB, databaseURL string) string {
	t.Helper()
	return StartWith(t, databaseURL, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, databaseURL string, opts Options) string {
	t.Helper()
	b, err := start(databaseURL, opts)
	if err != nil {
		t.Fatalf("pgbouncer: %v", err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("pgbouncer: %v", err)
		}
		if t.Failed() {
			t.Logf("pgbouncer's log:\n%s", b.logTail())
		}
		os.RemoveAll(b.dir)
	})
	return b.url
}

// A bouncer is one running PgBouncer.
type bouncer struct {
	dir     string
	url     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// start writes the configuration and starts PgBouncer, trying another port
// if another process took the one it was given.
func start(databaseURL string, opts Options) (*bouncer, error) {
	bin, err := binary(opts.Binary)
	if err != nil {
		return nil, err
	}
	target, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse the database URL: %w", err)
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 2
	}
	for attempt := 1; ; attempt++ {
		b, err := launch(bin, target, cred, opts)
		if errors.Is(err, errPortTaken) && attempt < 5 {
			continue
		}
		return b, err
	}
}

// binary finds the pgbouncer program, or says how to install it.
func binary(name string) (string, error) {
	if name != "" {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("%w: %s: %v; install it with `apt-get install pgbouncer` (Debian, Ubuntu)", ErrNoBinary, name, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath, nil
	}
	return "", fmt.Errorf("%w: no pgbouncer on the PATH nor at %s; the tests that run the program behind a "+
		"connection pooler need it: install it with `apt-get install pgbouncer` (Debian, Ubuntu) "+
		"or `brew install pgbouncer` (macOS)", ErrNoBinary, debianPath)
}

// credential is nil when PgBouncer can run as us, and the postgres user's
// when we are root, which PgBouncer refuses.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(runAsUser)
	if err != nil {
		return nil, fmt.Errorf("PgBouncer refuses to run as root, and there is no %q user to run it as (create one with `useradd --system %s`): %w",
			runAsUser, runAsUser, err)
	}
	uid, uerr := strconv.ParseUint(u.Uid, 10, 32)
	gid, gerr := strconv.ParseUint(u.Gid, 10, 32)
	if uerr != nil || gerr != nil {
		return nil, fmt.Errorf("user %q has ids %s:%s, which are not numbers", runAsUser, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

var errPortTaken = errors.New("port taken")

// launch starts one PgBouncer on a port that was free a moment ago and
// waits until it accepts connections.
func launch(bin string, target *pgx.ConnConfig, cred *syscall.Credential, opts Options) (_ *bouncer, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgbouncer-*")
	if err != nil {
		return nil, fmt.Errorf("make a directory for its files: %w", err)
	}
	b := &bouncer{dir: dir}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := writeFiles(dir, target, port, opts); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := chownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "pgbouncer.log"))
	if err != nil {
		return nil, fmt.Errorf("create its log: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	b.cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	b.cmd.SysProcAttr = sysProcAttr(cred)
	if err := b.run(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(target.User, target.Password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + target.Database,
		RawQuery: "sslmode=disable",
	}
	b.url = u.String()
	if err := b.waitReady(); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// writeFiles writes pgbouncer.ini and the password file. PgBouncer logs in
// to the server with the password it finds there for the client's user.
func writeFiles(dir string, target *pgx.ConnConfig, port int, opts Options) error {
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
server_tls_sslmode = disable
ignore_startup_parameters = extra_float_digits
pidfile =
logfile =
`, target.Host, target.Port, port, filepath.Join(dir, "userlist.txt"), opts.PoolSize)
	users := quote(target.User) + " " + quote(target.Password) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o600); err != nil {
		return fmt.Errorf("write pgbouncer.ini: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(users), 0o600); err != nil {
		return fmt.Errorf("write userlist.txt: %w", err)
	}
	return nil
}

// quote writes s as the password file wants it: in double quotes, each
// double quote doubled.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// freePort returns a loopback port that nobody listened on a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// chownTree hands dir and its files to the user PgBouncer runs as.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("hand %s to user %q: %w", p, runAsUser, err)
		}
		return nil
	})
}

// run starts the command from a goroutine locked to its OS thread for the
// child's whole life: the parent-death signal (see sysProcAttr) fires when
// the thread that forked the child ends, and the Go runtime ends a thread
// whose locked goroutine returns.
func (b *bouncer) run() error {
	b.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := b.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	return <-started
}

// waitReady connects through PgBouncer until it answers a query, it exits,
// or ten seconds pass.
func (b *bouncer) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		attempt, stop := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, b.url)
		if err == nil {
			_, err = conn.Exec(attempt, "SELECT 1")
			conn.Close(attempt)
		}
		stop()
		if err == nil {
			return nil
		}
		select {
		case <-b.exited:
			log := b.logTail()
			if strings.Contains(log, "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("pgbouncer exited during start-up (%v); its log:\n%s", b.waitErr, log)
		case <-ctx.Done():
			return fmt.Errorf("wait for pgbouncer to accept connections: %w (last attempt: %v); its log:\n%s", ctx.Err(), err, b.logTail())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// stop ends PgBouncer at once (SIGTERM is its immediate shutdown) and waits
// for it to exit.
func (b *bouncer) stop() error {
	select {
	case <-b.exited:
		return nil
	default:
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		return nil
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
		return errors.New("it did not stop within 10s of SIGTERM and was killed")
	}
}

// logTail returns the end of PgBouncer's log.
func (b *bouncer) logTail() string {
	log, err := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	if err != nil {
		return fmt.Sprintf("(cannot read it: %v)", err)
	}
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	return string(log)
}
