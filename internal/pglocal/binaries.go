package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries reports that no PostgreSQL server binaries (initdb, pg_ctl
// and postgres side by side) were found on this machine.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH, via pg_config --bindir, or in /usr/lib/postgresql/*/bin")

// serverPrograms are the programs a directory must hold to be usable.
var serverPrograms = []string{"initdb", "pg_ctl", "postgres"}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres. It
// looks on PATH first, then at what `pg_config --bindir` reports, then at the
// newest /usr/lib/postgresql/*/bin (where Debian and Ubuntu put the server
// binaries without adding them to PATH). It returns ErrNoBinaries when none of
// these holds all three programs.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if dir := filepath.Dir(p); hasServerPrograms(dir) {
			return dir, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" && hasServerPrograms(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest first, by major version number rather than by string ("9.6" < "15").
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(versionOfDir(b), versionOfDir(a)) })
	for _, dir := range dirs {
		if hasServerPrograms(dir) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

// hasServerPrograms reports whether dir holds every program in serverPrograms
// as an executable file.
func hasServerPrograms(dir string) bool {
	for _, name := range serverPrograms {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOfDir extracts "15" from "/usr/lib/postgresql/15/bin".
func versionOfDir(dir string) string {
	return filepath.Base(filepath.Dir(dir))
}

// compareVersions compares dotted version strings numerically.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// versionPattern matches the version in "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
var versionPattern = regexp.MustCompile(`\(PostgreSQL\) ((\d+)(?:\.\d+)*)`)

// serverVersion runs `postgres --version` from binDir and returns the whole
// version line and the major version ("15"). It runs as the current user even
// when that is root: postgres answers --version before it checks for root.
func serverVersion(ctx context.Context, binDir string) (line, major string, err error) {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("run postgres --version: %w", err)
	}
	line = strings.TrimSpace(string(out))
	m := versionPattern.FindStringSubmatch(line)
	if m == nil {
		return "", "", fmt.Errorf("parse postgres --version output %q: no version found", line)
	}
	return line, m[2], nil
}
