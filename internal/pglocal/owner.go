package pglocal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// ErrUnreachable reports that the unprivileged user the server must run as
// cannot reach the data directory. Errors wrapping it carry a message that
// says which directory blocks it and what to do.
var ErrUnreachable = errors.New("data directory not reachable by the server's user")

// serverUserName is the account PostgreSQL runs as when we are root.
const serverUserName = "postgres"

// owner is the operating system account the server runs as.
type owner struct {
	name   string
	uid    int
	gid    int
	groups []int // supplementary groups, for the reachability check

	// cred is nil when the server runs as the current user; otherwise it is
	// the credential every initdb, pg_ctl and postgres process gets.
	cred *syscall.Credential
}

// serverOwner returns the account the server runs as: the current user, or,
// when that is root (which PostgreSQL refuses), the unprivileged postgres user.
func serverOwner() (*owner, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return &owner{name: name, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(serverUserName)
	if err != nil {
		return nil, fmt.Errorf("look up user %q: PostgreSQL refuses to run as root, so it must run as an unprivileged %q user, and there is none (create it with `useradd --system %s`, run as a non-root user, or set DATABASE_URL to a server you run yourself): %w",
			serverUserName, serverUserName, serverUserName, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("parse uid of user %q: %w", serverUserName, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("parse gid of user %q: %w", serverUserName, err)
	}
	o := &owner{name: serverUserName, uid: uid, gid: gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil && g != gid {
				o.groups = append(o.groups, g)
			}
		}
	}
	groups := make([]uint32, len(o.groups))
	for i, g := range o.groups {
		groups[i] = uint32(g)
	}
	o.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	return o, nil
}

// switched reports whether the server runs as another user than us.
func (o *owner) switched() bool { return o.cred != nil }

// sysProcAttr returns the process attributes for a helper program (initdb,
// pg_ctl) run as the server's user.
func (o *owner) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: o.cred}
}

// checkReachable returns an error wrapping ErrUnreachable when the server's
// user cannot search every directory from / down to the parent of dir (dir
// itself is handed to that user by chownTree). Only the mode bits
// are checked (not ACLs), which is what matters on a stock system. There is
// nothing to check when the server runs as the current user.
func (o *owner) checkReachable(dir string) error {
	if !o.switched() {
		return nil
	}
	var blocked []string
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		blocked = append(blocked, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	slices.Reverse(blocked) // from / downwards, so the first failure is the outermost one
	for _, p := range blocked {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // created later by us, and chowned then
		}
		if err != nil {
			return fmt.Errorf("check access to %s: %w", p, err)
		}
		if !o.canSearch(fi) {
			return fmt.Errorf("%w: PostgreSQL refuses to run as root, so it runs as the unprivileged user %q, "+
				"but that user cannot reach %s because %s (mode %04o, owner uid %d) is not searchable by it. "+
				"Either set DATABASE_URL (TEST_DATABASE_URL for the tests) to a PostgreSQL server you run yourself, "+
				"move the checkout to a directory every user can reach (for example under /srv or /tmp), "+
				"run as a non-root user, or let that user through with `chmod o+x %s`",
				ErrUnreachable, o.name, dir, p, fi.Mode().Perm(), statUID(fi), p)
		}
	}
	return nil
}

// canSearch reports whether the server's user may search (x) the directory.
func (o *owner) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == o.uid:
		return perm&0o100 != 0
	case int(st.Gid) == o.gid || slices.Contains(o.groups, int(st.Gid)):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// statUID returns the owner of a file, or -1 when unknown.
func statUID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// chownTree hands dir and everything below it to the server's user. It does
// nothing when the server runs as the current user.
func (o *owner) chownTree(dir string) error {
	if !o.switched() {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, o.uid, o.gid)
	})
	if err != nil {
		return fmt.Errorf("hand %s to user %q: %w", dir, o.name, err)
	}
	return nil
}

// chown hands one file or directory to the server's user.
func (o *owner) chown(p string) error {
	if !o.switched() {
		return nil
	}
	if err := os.Lchown(p, o.uid, o.gid); err != nil {
		return fmt.Errorf("hand %s to user %q: %w", p, o.name, err)
	}
	return nil
}
