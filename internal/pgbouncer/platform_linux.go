package pgbouncer

import "syscall"

// sysProcAttr runs PgBouncer as cred (nil: as us), in a process group of its
// own, so that a Ctrl-C meant for the tests does not reach it first, and
// with SIGTERM sent by the kernel if the test binary dies without stopping
// it (a test that times out ends the binary without running cleanups).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
