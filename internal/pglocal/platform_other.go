//go:build unix && !linux

package pglocal

import "syscall"

// serverSysProcAttr returns the attributes of the postgres child process: its
// own process group, so that a Ctrl-C sent to the terminal's foreground group
// reaches only us. This system has no parent-death signal, so a server whose
// parent was killed outlives it; the next Start stops it (see stopStale).
func serverSysProcAttr(o *owner, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: o.cred, Setpgid: true}
}

// processName reports that the command name of a process cannot be told here.
func processName(int) (string, bool) { return "", false }

// ramTempDir reports that no RAM-backed directory is known here.
func ramTempDir() string { return "" }

// onRAM reports that a RAM file system cannot be told apart here.
func onRAM(string) bool { return false }

// isZombie reports that zombies cannot be told apart here.
func isZombie(int) bool { return false }
