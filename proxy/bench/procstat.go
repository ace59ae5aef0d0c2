package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// procCPU is the user + system time of process pid and, with children,
// of its live child processes (nginx's workers), from /proc: every thread
// counted, those that have exited included.
func procCPU(pid int, children bool) (time.Duration, error) {
	total, _, err := statCPU(pid)
	if err != nil {
		return 0, err
	}
	if !children {
		return total, nil
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil || p == pid {
			continue
		}
		cpu, ppid, err := statCPU(p)
		if err != nil || ppid != pid {
			continue // gone meanwhile, or not a child
		}
		total += cpu
	}
	return total, nil
}

// statCPU reads utime + stime and the parent of one process.
func statCPU(pid int) (cpu time.Duration, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("read CPU time of process %d: no command name in %q", pid, b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("read CPU time of process %d: %d fields", pid, len(f))
	}
	ppid, err1 := strconv.Atoi(string(f[1]))            // field 4
	ut, err2 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	st, err3 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, fmt.Errorf("read CPU time of process %d: bad fields in %q", pid, b)
	}
	return time.Duration(ut+st) * clockTick, ppid, nil
}
