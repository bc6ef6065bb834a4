package nginxtest

import "syscall"

// sysProcAttr runs nginx in a process group of its own, so that a Ctrl-C
// meant for the tests does not reach it first, and with SIGTERM sent by the
// kernel if the test binary dies without stopping it (a test that times
// out ends the binary without running cleanups).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
