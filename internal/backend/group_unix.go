//go:build unix

package backend

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func termGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGTERM) }
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

// groupAlive reports whether a live process of the group is left.
func groupAlive(pgid int) bool { return groupSize(pgid) > 0 }

// groupSize counts the live processes of a process group: from /proc, where
// a zombie (ended, only not reaped yet) does not count; without /proc, 1 when
// the group has any process.
func groupSize(pgid int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		if syscall.Kill(-pgid, 0) == nil {
			return 1
		}
		return 0
	}
	want := strconv.Itoa(pgid)
	n := 0
	for _, e := range entries {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			n++
		}
	}
	return n
}
