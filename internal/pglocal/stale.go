package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrInUse reports that another live process is running a server on the data
// directory.
var ErrInUse = errors.New("data directory is in use by another process")

// lockDataDir takes an exclusive lock on the file beside dataDir that is held
// for the life of the Cluster and dropped by the kernel when this process
// dies however it dies. That tells a server left behind by a dead process
// (stale: stop it) from one that a live process is using (leave it alone).
func lockDataDir(dataDir string) (*os.File, error) {
	path := dataDir + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked; is another copy of the program running?", ErrInUse, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// stopStale stops a server that an earlier run left behind on dataDir (its
// parent was SIGKILLed and the server survived). The caller holds the data
// directory's lock, so no live process of ours owns such a server. A
// postmaster.pid whose process is gone is left to postgres, which replaces it.
func stopStale(ctx context.Context, binDir string, o *owner, dataDir string, log io.Writer) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 || !processAlive(pid) {
		return nil
	}
	if name, ok := processName(pid); isZombie(pid) || ok && name != "postgres" {
		// The number now belongs to an unrelated process (pids are reused
		// quickly in containers), or to a dead server nobody reaped.
		// Postgres would refuse to start, thinking another server runs,
		// so the file goes.
		if err := os.Remove(pidFile); err != nil {
			return fmt.Errorf("remove stale postmaster.pid: %w", err)
		}
		return nil
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pg_ctl"), "stop", "-D", dataDir, "-m", "fast", "-w", "-t", "30")
	cmd.Dir = "/"
	cmd.SysProcAttr = o.sysProcAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stop the server (pid %d) an earlier run left on %s: %w: %s", pid, dataDir, err, strings.TrimSpace(string(out)))
	}
	say(log, "pglocal: stopped a PostgreSQL server (pid %d) that an earlier run left running", pid)
	return nil
}

// processAlive reports whether a process with this id exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tempDirPrefix names the temporary directories of ephemeral clusters.
const tempDirPrefix = "pglocal-"

// tempRoot returns the directory in which an ephemeral cluster's temporary
// directory is made: $TMPDIR if set, else a RAM file system if there is a
// roomy one, else the system's temporary directory.
func tempRoot() string {
	if os.Getenv("TMPDIR") == "" {
		if dir := ramTempDir(); dir != "" {
			return dir
		}
	}
	return os.TempDir()
}

// staleAfter is how old an unlocked temporary directory must be before it is
// taken for the leftover of a killed process: a younger one may belong to a
// process that has created it but not locked it yet.
const staleAfter = time.Minute

// removeStaleTempDirs deletes the temporary directories of ephemeral clusters
// whose process died without Stop (a test binary killed by -timeout, say),
// each of which holds a whole cluster (about 40 MB). It is best effort.
func removeStaleTempDirs(o *owner) {
	var dirs []string
	for _, root := range []string{os.TempDir(), ramTempDir()} {
		if root != "" {
			found, _ := filepath.Glob(filepath.Join(root, tempDirPrefix+"*"))
			dirs = append(dirs, found...)
		}
	}
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < staleAfter {
			continue
		}
		if uid := statUID(fi); uid != os.Geteuid() && uid != o.uid {
			continue
		}
		data := filepath.Join(dir, "data")
		if _, err := os.Stat(data + ".lock"); err != nil {
			continue // not made by Start
		}
		lock, err := lockDataDir(data)
		if err != nil {
			continue // in use, or not ours to judge
		}
		if b, err := os.ReadFile(filepath.Join(data, "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 && processAlive(pid) {
				if name, ok := processName(pid); !ok || name == "postgres" {
					// Immediate shutdown: the cluster was throwaway.
					_ = syscall.Kill(pid, syscall.SIGQUIT)
				}
			}
		}
		_ = os.RemoveAll(dir)
		lock.Close()
	}
}
