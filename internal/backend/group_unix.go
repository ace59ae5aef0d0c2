//go:build unix

package backend

import "syscall"

func termGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGTERM) }
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

// groupAlive reports whether any process of the group is left.
func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }
