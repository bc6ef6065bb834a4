// Package pglocal runs a private PostgreSQL server from the machine's server
// binaries, for `go run .` (a persistent cluster in the checkout) and for the
// tests (a throwaway cluster in a temporary directory).
//
// The server is a child process that listens on 127.0.0.1 only, on a free
// port picked at each start, with no Unix socket, and that authenticates with
// a generated password. When the program runs as root, which PostgreSQL
// refuses, the server runs as the unprivileged user "postgres" and owns the
// data directory.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configures Start. The zero value is not usable: it needs a DataDir
// or Ephemeral.
type Options struct {
	// DataDir is the cluster's directory. Start creates it with initdb when
	// it is missing or empty and reuses the cluster it holds otherwise.
	// Beside it live DataDir+".password" (the superuser's password, mode
	// 0600, needed to reuse the cluster), DataDir+".log" (the server's log
	// of its latest start) and DataDir+".lock". Empty means a new temporary
	// directory that Stop removes, which requires Ephemeral; it is made in
	// $TMPDIR if that is set, else in /dev/shm if that is a RAM file system
	// with at least 1 GiB free, else in /tmp.
	DataDir string

	// Ephemeral trades durability for speed, for throwaway clusters: no
	// fsync, no synchronous commit, no full-page writes, minimal WAL, no
	// autovacuum, more connections. A crash of the machine may lose or
	// corrupt everything.
	Ephemeral bool

	// Durable keeps an Ephemeral cluster's writes as safe as PostgreSQL's
	// defaults make them: fsync, synchronous commit and full-page writes
	// stay on, WAL keeps its default level and size, initdb syncs, and the
	// temporary directory is made on disk ($TMPDIR, else /tmp), never in
	// RAM, where an fsync would cost nothing. The rest of Ephemeral stays
	// (no autovacuum, more connections, the directory removed by Stop). It
	// is for measuring what a commit costs on a real server; a cluster that
	// is not Ephemeral is always durable.
	Durable bool

	// Settings are more server settings, "name=value" each, given to the
	// server at every start after the ones Start chooses, so they win: for
	// example shared_preload_libraries=pg_stat_statements. Nil adds none.
	Settings []string

	// Log receives one or two short lines saying what Start did. Nil
	// discards them. The server's own log goes to DataDir+".log".
	Log io.Writer

	// BinDir is the directory holding initdb, pg_ctl and postgres. Empty
	// means the one FindBinaries returns.
	BinDir string

	// CacheDir, when set and Ephemeral, keeps a pristine cluster per
	// PostgreSQL version there; a new cluster is then a copy of it (tenths
	// of a second) rather than the work of initdb (seconds). The directory
	// is created if missing and only ever holds clusters that no server has
	// run on. Empty means always run initdb.
	CacheDir string
}

// A Cluster is a running private PostgreSQL server. Its methods are safe for
// concurrent use.
type Cluster struct {
	dataDir   string
	logPath   string
	tempDir   string // removed by Stop; empty for a caller's DataDir
	ephemeral bool
	durable   bool     // an ephemeral cluster that keeps PostgreSQL's durable settings
	settings  []string // Options.Settings
	password  string
	port      int

	lock *os.File // held while the server may run; see lockDataDir

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the postgres process has exited
	waitErr error         // how it exited; read only after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 30 * time.Second

// Start starts a server on opts.DataDir, creating the cluster first if there
// is none, and returns once the server accepts connections. ctx bounds the
// start only; the server runs until Stop, or until this process dies (the
// kernel then signals it). A server that an earlier, killed run left running
// on the same directory is stopped first.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	}
	o, err := serverOwner()
	if err != nil {
		return nil, err
	}
	versionLine, major, err := serverVersion(ctx, binDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{ephemeral: opts.Ephemeral, durable: opts.Durable || !opts.Ephemeral, settings: opts.Settings}
	defer func() {
		if err != nil {
			c.release()
		}
	}()

	shownDir := opts.DataDir
	if opts.DataDir == "" {
		if !opts.Ephemeral {
			return nil, errors.New("start postgres: Options.DataDir is empty, and only an Ephemeral cluster may live in a temporary directory")
		}
		removeStaleTempDirs(o)
		root := tempRoot()
		if c.durable {
			root = os.TempDir()
			if onRAM(root) {
				say(opts.Log, "pglocal: %s is in RAM, where fsync costs nothing: set TMPDIR to a directory on disk for a durable cluster", root)
			}
		}
		if c.tempDir, err = os.MkdirTemp(root, tempDirPrefix+"*"); err != nil {
			return nil, fmt.Errorf("make temporary directory: %w", err)
		}
		if err := o.chown(c.tempDir); err != nil {
			return nil, err
		}
		c.dataDir = filepath.Join(c.tempDir, "data")
		shownDir = c.dataDir
		if err := o.checkReachable(c.dataDir); err != nil { // $TMPDIR may be private
			return nil, err
		}
	} else {
		if c.dataDir, err = filepath.Abs(opts.DataDir); err != nil {
			return nil, fmt.Errorf("resolve data directory: %w", err)
		}
		// Checked before anything is made: a directory we make is reachable.
		if err := o.checkReachable(c.dataDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(c.dataDir), 0o755); err != nil {
			return nil, fmt.Errorf("make parent of data directory: %w", err)
		}
	}
	c.logPath = c.dataDir + ".log"
	if c.lock, err = lockDataDir(c.dataDir); err != nil {
		return nil, err
	}
	if err := stopStale(ctx, binDir, o, c.dataDir, opts.Log); err != nil {
		return nil, err
	}
	created, err := c.prepare(ctx, binDir, o, opts, versionLine, major)
	if err != nil {
		return nil, err
	}
	if err := c.launch(ctx, binDir, o); err != nil {
		return nil, err
	}

	as := ""
	if o.switched() {
		as = fmt.Sprintf(" as user %q", o.name)
	}
	if created {
		say(opts.Log, "pglocal: created a new PostgreSQL %s cluster in %s", major, shownDir)
	}
	say(opts.Log, "pglocal: PostgreSQL %s is running%s on 127.0.0.1:%d (log: %s)", major, as, c.port, c.logPath)
	return c, nil
}

// prepare makes sure dataDir holds a cluster of this major version owned by
// the server's user, and learns its password. It reports whether it created
// the cluster.
func (c *Cluster) prepare(ctx context.Context, binDir string, o *owner, opts Options, versionLine, major string) (created bool, err error) {
	pwPath := c.dataDir + ".password"
	b, err := os.ReadFile(filepath.Join(c.dataDir, "PG_VERSION"))
	switch {
	case err == nil:
		if have := strings.TrimSpace(string(b)); have != major {
			return false, fmt.Errorf("start postgres: the cluster in %s was made by PostgreSQL %s, but the binaries in %s are PostgreSQL %s; "+
				"install PostgreSQL %s, or delete the directory to start afresh (losing its data)", c.dataDir, have, binDir, major, have)
		}
		if c.password, err = readPasswordFile(pwPath); err != nil {
			return false, fmt.Errorf("read the superuser password of the cluster in %s: %w; without it the cluster cannot be used, so delete the directory to start afresh (losing its data)", c.dataDir, err)
		}
		// Hand it over again: files may have been copied in, or the
		// cluster made by a run that was not root.
		return false, o.chownTree(c.dataDir)
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read PG_VERSION: %w", err)
	}

	entries, err := os.ReadDir(c.dataDir)
	switch {
	case err == nil && len(entries) > 0:
		return false, fmt.Errorf("start postgres: %s is %w", c.dataDir, errNotDataDir)
	case err == nil:
		if err := os.Remove(c.dataDir); err != nil { // a new cluster is renamed into place
			return false, fmt.Errorf("remove empty data directory: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read data directory: %w", err)
	}

	var entry string
	if opts.Ephemeral && opts.CacheDir != "" {
		entry = cacheEntry(opts.CacheDir, binDir, versionLine, major)
		if pw, ok := fromCache(entry, c.dataDir, o); ok {
			c.password = pw
			if c.tempDir == "" {
				return true, writePasswordFile(pwPath, pw)
			}
			return true, nil
		}
	}
	c.password = newPassword()
	if c.tempDir == "" {
		// Written first: a cluster whose password is lost is useless,
		// while a password file without a cluster is simply replaced.
		if err := writePasswordFile(pwPath, c.password); err != nil {
			return false, err
		}
	}
	if err := initCluster(ctx, binDir, o, c.dataDir, c.password, !c.durable); err != nil {
		return false, err
	}
	if entry != "" {
		toCache(entry, c.dataDir, c.password)
	}
	return true, nil
}

// errPortTaken reports that another process took the port between our
// picking it and the server binding it.
var errPortTaken = errors.New("port taken")

// launch starts the server on a free port and waits until it accepts
// connections, trying another port if the one picked was taken meanwhile.
func (c *Cluster) launch(ctx context.Context, binDir string, o *owner) error {
	for attempt := 1; ; attempt++ {
		err := c.launchOnce(ctx, binDir, o)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 5 {
			return err
		}
	}
}

// launchOnce starts the server on a free port and waits until it accepts
// connections.
func (c *Cluster) launchOnce(ctx context.Context, binDir string, o *owner) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.port = port
	logFile, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close() // the child has its own copy

	args := []string{
		"-D", c.dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", // no socket: no path-length or permission trouble
	}
	deathSig := syscall.SIGINT // fast shutdown: the cluster is left clean
	if c.ephemeral {
		args = append(args,
			"-c", "max_connections=300",
			"-c", "autovacuum=off",
			"-c", "jit=off",
		)
		if !c.durable {
			args = append(args,
				"-c", "fsync=off",
				"-c", "synchronous_commit=off",
				"-c", "full_page_writes=off",
				"-c", "wal_level=minimal",
				"-c", "max_wal_senders=0",
				"-c", "max_wal_size=128MB", // WAL is RAM when the cluster lives in /dev/shm
				"-c", "min_wal_size=32MB",
			)
		}
		deathSig = syscall.SIGQUIT // immediate shutdown: nothing is worth saving
	}
	for _, s := range c.settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.Dir = "/"
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverSysProcAttr(o, deathSig)
	if err := c.run(cmd); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		c.halt()
		return err
	}
	return nil
}

// run starts cmd from a goroutine locked to its OS thread, which stays locked
// until the child exits: the parent-death signal fires when the thread that
// forked the child exits, and the Go runtime ends a thread whose locked
// goroutine returns. Locking keeps that thread alive for as long as the child.
func (c *Cluster) run(cmd *exec.Cmd) error {
	c.cmd = cmd
	c.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return <-started
}

// waitReady connects to the server until a connection succeeds, the server
// exits, or the start-up deadline passes.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("parse server URL: %w", err)
	}
	cfg.ConnectTimeout = 5 * time.Second
	delay := 5 * time.Millisecond
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn.Close(ctx)
		}
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && strings.HasPrefix(pgErr.Code, "28") {
			// invalid_authorization_specification, invalid_password: waiting will not help.
			return fmt.Errorf("connect to postgres: %w (the password in %s.password does not match the cluster's)", err, c.dataDir)
		}
		select {
		case <-c.exited:
			log := c.logTail()
			if strings.Contains(log, "could not bind") || strings.Contains(log, "could not create any TCP/IP sockets") {
				return fmt.Errorf("start postgres on port %d: %w", c.port, errPortTaken)
			}
			return fmt.Errorf("postgres exited during start-up (%v); the end of its log %s:\n%s", c.waitErr, c.logPath, log)
		case <-ctx.Done():
			return fmt.Errorf("wait for postgres to accept connections: %w (last attempt: %v); the end of its log %s:\n%s", ctx.Err(), err, c.logPath, c.logTail())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// logTail returns the end of the server's log.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read it: %v)", err)
	}
	return tail(b, 3000)
}

// URL returns a connection URL for the named database as the superuser, of
// the form postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE?sslmode=disable.
// It holds the password: do not log it.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superUser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// DataDir returns the absolute path of the cluster's directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// Done returns a channel that is closed when the server process has exited,
// whether through Stop or on its own.
func (c *Cluster) Done() <-chan struct{} { return c.exited }

// Stop shuts the server down (fast shutdown: sessions are ended, the cluster
// is left clean), escalating if it takes too long, then releases the data
// directory and removes it if it was temporary. It is safe to call more than
// once; later calls return the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopErr = c.halt()
		if err := c.release(); err != nil {
			c.stopErr = errors.Join(c.stopErr, err)
		}
	})
	return c.stopErr
}

// Shutdown signals and how long each may take before the next.
const (
	fastShutdownWait      = 10 * time.Second
	immediateShutdownWait = 5 * time.Second
)

// halt stops the server process if it runs: SIGINT (fast shutdown), then
// SIGQUIT (immediate shutdown), then SIGKILL to its whole process group.
func (c *Cluster) halt() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, fastShutdownWait}, {syscall.SIGQUIT, immediateShutdownWait}} {
		if err := c.cmd.Process.Signal(step.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("stop postgres: %w", err)
		}
		select {
		case <-c.exited:
			return nil
		case <-time.After(step.wait):
		}
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
	return fmt.Errorf("stop postgres: it ignored SIGINT for %v and SIGQUIT for %v, and was killed", fastShutdownWait, immediateShutdownWait)
}

// release drops the data directory's lock and removes a temporary directory.
func (c *Cluster) release() error {
	if c.lock != nil {
		c.lock.Close()
	}
	if c.tempDir != "" {
		if err := os.RemoveAll(c.tempDir); err != nil {
			return fmt.Errorf("remove temporary cluster: %w", err)
		}
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// say writes one line to w, if there is a w.
func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
