//go:build !linux

package pgbouncer

import "syscall"

// sysProcAttr runs PgBouncer as cred (nil: as us), in a process group of its
// own, so that a Ctrl-C meant for the tests does not reach it first.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
