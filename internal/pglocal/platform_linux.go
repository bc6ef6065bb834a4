package pglocal

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// serverSysProcAttr returns the attributes of the postgres child process. It
// gets its own process group (Setpgid), so that a Ctrl-C sent to the
// terminal's foreground group reaches only us and we can stop the server
// cleanly, and the kernel sends it deathSig if we die without stopping it
// (Pdeathsig). Pdeathsig fires when the thread that started the child exits,
// so the child must be started from a goroutine locked to its thread for the
// child's whole life (see Cluster.launch).
func serverSysProcAttr(o *owner, deathSig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: o.cred, Setpgid: true, Pdeathsig: deathSig}
}

// processName returns the command name of a live process, and false if that
// cannot be told.
func processName(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// isZombie reports whether the process has exited but not been reaped. A
// zombie still answers kill(pid, 0), but it is no server; where the init
// process does not reap orphans, a killed server stays one.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z")
}

// shmDir is a RAM-backed file system on most Linux systems.
const shmDir = "/dev/shm"

// shmRoomNeeded is how much free space shmDir must have to be used: a
// cluster takes about 40 MB and each database about 8 MB more, and Docker's
// default /dev/shm of 64 MB is too small.
const shmRoomNeeded = 1 << 30

// tmpfsMagic is the file system type of a tmpfs, in statfs(2).
const tmpfsMagic = 0x01021994

// onRAM reports whether dir is on a tmpfs, where fsync writes nothing.
func onRAM(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}

// ramTempDir returns shmDir if it is a tmpfs with room to spare, else "".
// Creating files there is far faster than on a disk file system, and a
// cluster creates hundreds (each CREATE DATABASE about three hundred).
func ramTempDir() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(shmDir, &st); err != nil {
		return ""
	}
	if st.Type != tmpfsMagic || st.Bavail*uint64(st.Bsize) < shmRoomNeeded {
		return ""
	}
	return shmDir
}
