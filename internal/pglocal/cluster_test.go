package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testCacheDir is shared by the tests' ephemeral clusters, so that only the
// first of them runs initdb.
var testCacheDir string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		runHelper()
		return
	}
	dir, err := os.MkdirTemp("", "pglocaltest-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// reachableDir returns a new directory that the server's user can reach even
// when the tests run as root (t.TempDir makes directories of mode 0700), on
// a RAM file system when there is one.
func reachableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(tempRoot(), "pglocaltest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// start starts a cluster and stops it at cleanup.
func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

// query runs a query returning one value on the cluster's postgres database.
func query[T any](t *testing.T, c *Cluster, sql string) T {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(t.Context(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestFindBinaries(t *testing.T) {
	dir, err := FindBinaries()
	if err != nil {
		t.Fatalf("FindBinaries: %v (install the server binaries: apt-get install -y postgresql)", err)
	}
	for _, name := range serverPrograms {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinaries returned %s, which lacks %s: %v", dir, name, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"15", "9.6", 1},
		{"9.6", "15", -1},
		{"16", "16", 0},
		{"10", "9", 1},
	}
	for _, tt := range tests {
		got := compareVersions(tt.a, tt.b)
		if (got > 0) != (tt.want > 0) || (got < 0) != (tt.want < 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestStartStopEphemeral(t *testing.T) {
	var log bytes.Buffer
	c := start(t, Options{Ephemeral: true, CacheDir: testCacheDir, Log: &log})

	if got := query[string](t, c, "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q, want off", got)
	}
	if got := query[string](t, c, "SHOW server_encoding"); got != "UTF8" {
		t.Errorf("server_encoding = %q, want UTF8", got)
	}
	if got := query[string](t, c, "SHOW password_encryption"); got != "scram-sha-256" {
		t.Errorf("password_encryption = %q, want scram-sha-256", got)
	}
	if got := query[string](t, c, "SELECT current_user"); got != superUser {
		t.Errorf("current_user = %q, want %q", got, superUser)
	}
	if strings.Contains(log.String(), c.password) {
		t.Errorf("the log names the password: %q", log.String())
	}
	if !strings.Contains(log.String(), strconv.Itoa(c.Port())) {
		t.Errorf("log %q does not name the port %d", log.String(), c.Port())
	}

	tmp := c.tempDir
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done is not closed after Stop")
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s survives Stop: %v", tmp, err)
	}
	if _, err := pgx.Connect(t.Context(), c.URL("postgres")); err == nil {
		t.Error("connected after Stop")
	}
}

func TestEphemeralDurableKeepsPostgresDefaults(t *testing.T) {
	c := start(t, Options{Ephemeral: true, Durable: true, CacheDir: testCacheDir,
		Settings: []string{"shared_preload_libraries=pg_stat_statements", "work_mem=5MB"}})
	for _, s := range []struct{ name, want string }{
		{"fsync", "on"},
		{"synchronous_commit", "on"},
		{"full_page_writes", "on"},
		{"wal_level", "replica"},
		{"autovacuum", "off"},
		{"shared_preload_libraries", "pg_stat_statements"},
		{"work_mem", "5MB"},
	} {
		if got := query[string](t, c, "SHOW "+s.name); got != s.want {
			t.Errorf("%s = %q, want %q", s.name, got, s.want)
		}
	}
	if onRAM(c.DataDir()) && !onRAM(os.TempDir()) {
		t.Errorf("the durable cluster is in RAM (%s), where fsync costs nothing", c.DataDir())
	}
}

func TestEphemeralIsFastUnlessDurable(t *testing.T) {
	c := start(t, Options{Ephemeral: true, CacheDir: testCacheDir})
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		if got := query[string](t, c, "SHOW "+name); got != "off" {
			t.Errorf("%s = %q, want off", name, got)
		}
	}
}

func TestBadSettingStopsStart(t *testing.T) {
	_, err := Start(t.Context(), Options{Ephemeral: true, CacheDir: testCacheDir, Settings: []string{"no_such_setting=1"}})
	if err == nil || !strings.Contains(err.Error(), "no_such_setting") {
		t.Fatalf("got %v, want an error quoting the server's complaint about no_such_setting", err)
	}
}

func TestWrongPasswordIsRejected(t *testing.T) {
	c := start(t, Options{Ephemeral: true, CacheDir: testCacheDir})
	wrong := strings.Replace(c.URL("postgres"), c.password, "not"+c.password, 1)
	if _, err := pgx.Connect(t.Context(), wrong); err == nil {
		t.Fatal("connected with a wrong password")
	}
}

func TestReusePersistentDir(t *testing.T) {
	dataDir := filepath.Join(reachableDir(t), ".data", "postgres")

	var log bytes.Buffer
	first := start(t, Options{DataDir: dataDir, Log: &log})
	if !strings.Contains(log.String(), "created") {
		t.Errorf("first start log %q does not say it created a cluster", log.String())
	}
	if got := query[string](t, first, "SHOW fsync"); got != "on" {
		t.Errorf("fsync of a persistent cluster = %q, want on", got)
	}
	conn, err := pgx.Connect(t.Context(), first.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	password := first.password
	if err := first.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	fi, err := os.Stat(dataDir + ".password")
	if err != nil {
		t.Fatalf("password file: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("password file mode = %04o, want 0600", got)
	}

	log.Reset()
	second := start(t, Options{DataDir: dataDir, Log: &log})
	if strings.Contains(log.String(), "created") {
		t.Errorf("second start log %q says it created a cluster", log.String())
	}
	if second.password != password {
		t.Error("the second start uses another password")
	}
	if got := query[string](t, second, "SELECT v FROM kept"); got != "still here" {
		t.Errorf("kept row = %q, want %q", got, "still here")
	}
}

func TestSecondStartOnSameDirIsRefused(t *testing.T) {
	dataDir := filepath.Join(reachableDir(t), "data")
	start(t, Options{DataDir: dataDir, Ephemeral: true, CacheDir: testCacheDir})
	_, err := Start(t.Context(), Options{DataDir: dataDir, Ephemeral: true, CacheDir: testCacheDir})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Start error = %v, want ErrInUse", err)
	}
}

func TestNotADataDirIsRefused(t *testing.T) {
	dataDir := filepath.Join(reachableDir(t), "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "precious.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{DataDir: dataDir, Ephemeral: true, CacheDir: testCacheDir})
	if !errors.Is(err, errNotDataDir) {
		t.Fatalf("Start error = %v, want errNotDataDir", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "precious.txt")); err != nil {
		t.Errorf("the file in the directory is gone: %v", err)
	}
}

func TestUnreachableDataDirIsExplained(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	private := filepath.Join(reachableDir(t), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{DataDir: filepath.Join(private, "checkout", ".data", "postgres")})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Start error = %v, want ErrUnreachable", err)
	}
	for _, want := range []string{private, "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(private, "checkout")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start made directories before failing: %v", err)
	}
}

// pidOf returns the postmaster's pid from a data directory's postmaster.pid.
func pidOf(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("read postmaster.pid: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("parse postmaster.pid: %v", err)
	}
	return pid
}

// waitGone waits until no process has the pid.
func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); processAlive(pid) && !isZombie(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after %v", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStaleState(t *testing.T) {
	bin, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	o, err := serverOwner()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		// leave makes the data directory look like an earlier run left it;
		// it returns the pid postmaster.pid names.
		leave       func(t *testing.T, dataDir string) int
		wantStopped bool
	}{
		{
			name: "a server left running by a killed run is stopped",
			leave: func(t *testing.T, dataDir string) int {
				port, err := freePort()
				if err != nil {
					t.Fatal(err)
				}
				// pg_ctl daemonises the server: it survives its starter,
				// as a server does whose parent was SIGKILLed.
				cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "start", "-w", "-D", dataDir, "-l", filepath.Join(dataDir, "stale.log"),
					"-o", fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=", port))
				cmd.Dir = "/"
				cmd.SysProcAttr = o.sysProcAttr()
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("pg_ctl start: %v\n%s", err, out)
				}
				pid := pidOf(t, dataDir)
				t.Cleanup(func() { syscall.Kill(pid, syscall.SIGQUIT) }) // in case Start failed to
				return pid
			},
			wantStopped: true,
		},
		{
			name: "a pid file naming a dead process is replaced",
			leave: func(t *testing.T, dataDir string) int {
				cmd := exec.Command("true")
				if err := cmd.Run(); err != nil {
					t.Fatal(err)
				}
				writePidFile(t, dataDir, cmd.Process.Pid)
				return cmd.Process.Pid
			},
		},
		{
			name: "a pid file naming an unrelated live process is replaced",
			leave: func(t *testing.T, dataDir string) int {
				cmd := exec.Command("sleep", "60")
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
				writePidFile(t, dataDir, cmd.Process.Pid)
				return cmd.Process.Pid
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(reachableDir(t), "data")
			opts := Options{DataDir: dataDir, Ephemeral: true, CacheDir: testCacheDir}
			first := start(t, opts)
			if err := first.Stop(); err != nil {
				t.Fatal(err)
			}
			oldPid := tt.leave(t, dataDir)

			var log bytes.Buffer
			opts.Log = &log
			c := start(t, opts)
			query[int](t, c, "SELECT 1")
			if got := pidOf(t, dataDir); got == oldPid {
				t.Errorf("postmaster.pid still names %d", got)
			}
			if stopped := strings.Contains(log.String(), "stopped"); stopped != tt.wantStopped {
				t.Errorf("log %q: says it stopped a server: %v, want %v", log.String(), stopped, tt.wantStopped)
			}
			if tt.wantStopped {
				waitGone(t, oldPid, 5*time.Second)
			}
		})
	}
}

// writePidFile writes a postmaster.pid naming pid, as a server would.
func writePidFile(t *testing.T, dataDir string, pid int) {
	t.Helper()
	content := fmt.Sprintf("%d\n%s\n%d\n5432\n\n127.0.0.1\n  5432001         0\nready   \n", pid, dataDir, time.Now().Unix())
	path := filepath.Join(dataDir, "postmaster.pid")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// helperEnv makes the test binary act as a program that starts a cluster,
// prints the server's pid and then waits to be killed.
const helperEnv = "PGLOCAL_TEST_HELPER_DATADIR"

func runHelper() {
	c, err := Start(context.Background(), Options{DataDir: os.Getenv(helperEnv), Ephemeral: true, CacheDir: os.Getenv("PGLOCAL_TEST_HELPER_CACHE")})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(c.cmd.Process.Pid)
	// Churn threads, as a busy program does, to show that the thread that
	// started the server is not among those the runtime lets go.
	for {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done) // returns still locked: the runtime ends this thread
		}()
		<-done
		time.Sleep(time.Millisecond)
	}
}

func TestServerDiesWithItsParent(t *testing.T) {
	dataDir := filepath.Join(reachableDir(t), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dataDir, "PGLOCAL_TEST_HELPER_CACHE="+testCacheDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make([]byte, 256)
	n, err := out.Read(line)
	if err != nil {
		t.Fatalf("read helper output: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("helper said %q", line[:n])
	}
	time.Sleep(200 * time.Millisecond) // let the helper churn threads
	if !processAlive(pid) {
		t.Fatalf("server %d died before its parent", pid)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, pid, 10*time.Second)

	// The next run finds the directory unlocked and starts cleanly.
	c := start(t, Options{DataDir: dataDir, Ephemeral: true, CacheDir: testCacheDir})
	query[int](t, c, "SELECT 1")
}

func TestStaleTempDirsAreRemoved(t *testing.T) {
	o, err := serverOwner()
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleAfter)
	tests := []struct {
		name        string
		age         time.Time
		locked      bool
		wantRemoved bool
	}{
		{"an old unlocked directory is removed", old, false, true},
		{"an old directory whose owner lives is kept", old, true, false},
		{"a young directory is kept", time.Now(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := os.MkdirTemp(tempRoot(), tempDirPrefix+"*")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			data := filepath.Join(dir, "data")
			if err := os.Mkdir(data, 0o700); err != nil {
				t.Fatal(err)
			}
			lock, err := lockDataDir(data)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.locked {
				lock.Close()
			} else {
				t.Cleanup(func() { lock.Close() })
			}
			if err := os.Chtimes(dir, tt.age, tt.age); err != nil {
				t.Fatal(err)
			}

			removeStaleTempDirs(o)

			_, err = os.Stat(dir)
			if removed := errors.Is(err, os.ErrNotExist); removed != tt.wantRemoved {
				t.Errorf("removed = %v, want %v", removed, tt.wantRemoved)
			}
		})
	}
}
