//go:build !linux

package nginxtest

import "syscall"

// sysProcAttr runs nginx in a process group of its own, so that a Ctrl-C
// meant for the tests does not reach it first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
