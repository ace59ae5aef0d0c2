package backend

import "syscall"

// groupAttr puts the engine in its own process group, so Stop reaches its
// children too, and has the kernel kill it when the supervisor dies.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
