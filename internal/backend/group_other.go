//go:build unix && !linux

package backend

import "syscall"

// groupAttr puts the engine in its own process group, so Stop reaches its
// children too. Only Linux can have the kernel kill it with the supervisor;
// elsewhere the guard does.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
