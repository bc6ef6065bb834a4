package pglocal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// superUser is the name initdb gives the cluster's superuser.
const superUser = "postgres"

// initdbArgs are the options every cluster is created with, apart from where
// it goes and its password file. scram-sha-256 for every connection: the
// server listens on TCP only, and the password is the only thing keeping
// other local users out.
var initdbArgs = []string{"-U", superUser, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"}

// readPasswordFile returns the password kept in path.
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return pw, nil
}

// writePasswordFile stores the password in path, readable by us alone. It
// writes a temporary file and renames it, so path is never half written.
func writePasswordFile(path, password string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	// WriteFile keeps the mode of a file that already existed.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	return nil
}

// initCluster runs initdb as the server's user to create a cluster in
// dataDir, which must not exist. It builds the cluster in a staging directory
// beside dataDir and renames it into place, so that an interrupted initdb
// never leaves a half-made cluster where the next run would try to use it.
func initCluster(ctx context.Context, binDir string, o *owner, dataDir, password string, noSync bool) error {
	staging, err := os.MkdirTemp(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".initdb-")
	if err != nil {
		return fmt.Errorf("make staging directory: %w", err)
	}
	defer os.RemoveAll(staging)
	// The password travels in a file that only the server's user can read;
	// on a command line every local user could see it.
	pwFile := filepath.Join(staging, "pwfile")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initdb password file: %w", err)
	}
	if err := o.chownTree(staging); err != nil {
		return err
	}
	target := filepath.Join(staging, "data")
	args := append([]string{"-D", target, "--pwfile=" + pwFile}, initdbArgs...)
	if noSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Dir = "/" // initdb looks up its working directory, which the server's user may not be allowed to see
	cmd.SysProcAttr = o.sysProcAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("run initdb: %w:\n%s", err, tail(out, 2000))
	}
	if err := os.Rename(target, dataDir); err != nil {
		return fmt.Errorf("move new cluster into place: %w", err)
	}
	return nil
}

// cacheEntry returns the directory in cacheDir that holds a pristine cluster
// made by this PostgreSQL version with initdbArgs. Anything that changes what
// initdb would produce changes the name, so a stale entry is never used.
func cacheEntry(cacheDir, binDir, versionLine, major string) string {
	h := sha256.Sum256([]byte(strings.Join(append([]string{binDir, versionLine}, initdbArgs...), "\n")))
	return filepath.Join(cacheDir, "pg"+major+"-"+hex.EncodeToString(h[:6]))
}

// fromCache copies the cached pristine cluster into dataDir, handing it to the
// server's user, and returns its password. It reports false, leaving no
// dataDir behind, when there is no usable entry.
func fromCache(entry, dataDir string, o *owner) (password string, ok bool) {
	pw, err := readPasswordFile(filepath.Join(entry, "password"))
	if err != nil {
		return "", false
	}
	if err := copyTree(filepath.Join(entry, "data"), dataDir, o); err != nil {
		os.RemoveAll(dataDir)
		return "", false
	}
	return pw, true
}

// toCache stores a copy of the pristine cluster in dataDir as entry, so that
// the next ephemeral cluster need not run initdb. Concurrent processes may
// race to fill the same entry; the first rename wins and the rest discard
// their copies. It is best effort: a failure only costs the next start time.
func toCache(entry, dataDir, password string) {
	cacheDir := filepath.Dir(entry)
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return
	}
	// Leftovers of processes killed while filling the cache.
	if old, _ := filepath.Glob(filepath.Join(cacheDir, ".tmp-*")); len(old) > 0 {
		for _, dir := range old {
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > staleAfter {
				os.RemoveAll(dir)
			}
		}
	}
	staging, err := os.MkdirTemp(cacheDir, ".tmp-")
	if err != nil {
		return
	}
	defer os.RemoveAll(staging)
	if err := copyTree(dataDir, filepath.Join(staging, "data"), nil); err != nil {
		return
	}
	if err := os.WriteFile(filepath.Join(staging, "password"), []byte(password+"\n"), 0o600); err != nil {
		return
	}
	_ = os.Rename(staging, entry) // fails harmlessly if another process got there first
}

// copyTree copies the directory src to dst (which must not exist), keeping
// permission bits, and hands every copy to o's user unless o is nil. A data
// directory holds only directories and regular files.
func copyTree(src, dst string, o *owner) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("copy %s: not a regular file or directory", p)
		}
		if o != nil {
			return o.chown(target)
		}
		return nil
	})
}

// copyFile copies one regular file.
func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

// tail returns at most the last n bytes of b, starting at a line boundary,
// trimmed of surrounding space.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(string(b))
}

// newPassword returns a fresh superuser password: 26 characters of base32,
// 130 bits from crypto/rand, safe in a URL without escaping.
func newPassword() string { return rand.Text() }

// errNotDataDir reports a directory that is neither empty nor a cluster.
var errNotDataDir = errors.New("neither empty nor a PostgreSQL data directory (no PG_VERSION file); refusing to touch it")
