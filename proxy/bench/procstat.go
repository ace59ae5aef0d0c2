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
	return sumTree(pid, children, func(p int) (time.Duration, error) {
		cpu, _, err := statCPU(p)
		return cpu, err
	})
}

// procSyscalls is the read and write system calls (syscr + syscw in
// /proc/PID/io) of process pid and, with children, of its live child
// processes, every thread counted.
func procSyscalls(pid int, children bool) (uint64, error) {
	return sumTree(pid, children, ioSyscalls)
}

// sumTree adds up read over process pid and, with children, its child
// processes; a child gone meanwhile adds nothing.
func sumTree[T time.Duration | uint64](pid int, children bool, read func(int) (T, error)) (T, error) {
	pids, err := procTree(pid, children)
	if err != nil {
		return 0, err
	}
	var total T
	for i, p := range pids {
		v, err := read(p)
		if err != nil && i == 0 {
			return 0, err
		}
		total += v
	}
	return total, nil
}

// procTree is pid and, with children, its child processes now.
func procTree(pid int, children bool) ([]int, error) {
	out := []int{pid}
	if !children {
		return out, nil
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil || p == pid {
			continue
		}
		if _, ppid, err := statCPU(p); err == nil && ppid == pid {
			out = append(out, p)
		}
	}
	return out, nil
}

// ioSyscalls reads syscr + syscw of one process.
func ioSyscalls(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read system calls of process %d: %w", pid, err)
	}
	var total uint64
	found := 0
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		if !ok || (string(k) != "syscr" && string(k) != "syscw") {
			continue
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read system calls of process %d: bad %s in %q", pid, k, line)
		}
		total += n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("read system calls of process %d: no syscr and syscw in %q", pid, b)
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
