package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/freeport"
	"github.com/tokentrace/tokentrace/internal/matrix"
)

// buildSupervisor builds this command into a temporary folder: the tests
// run it as users do, so that the simulator is a real child process.
func buildSupervisor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "supervisor")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fastSim are the flags of a quick matrix on the simulator: a fifth of
// real time, a small context, short answers.
func fastSim(out string, port int, extra ...string) []string {
	return append([]string{"run", "--backend", "sim", "--out", out, "--port", strconv.Itoa(port),
		"--sim-flag=-time-scale=0.2", "--num-ctx", "1024", "--max-tokens", "20",
		"--duration", "1500ms", "--warmup", "200ms"}, extra...)
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func runBin(t *testing.T, bin string, limit time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("supervisor %v did not end within %v; stderr:\n%s", args, limit, e.String())
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("run supervisor: %v", err)
	}
	return o.String(), e.String(), code
}

// enginesOn lists the live processes that serve as an engine on the port
// (their environment says OLLAMA_HOST=127.0.0.1:port).
func enginesOn(port int) []int {
	want := []byte(fmt.Sprintf("OLLAMA_HOST=127.0.0.1:%d\x00", port))
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		pids = append(pids, pid)
	}
	return pids
}

// waitNoEngine waits until no engine process is left and its port is free:
// a process that is exiting has lost its environment before its sockets.
func waitNoEngine(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(enginesOn(port)) > 0 || !portFree(port) {
		if time.Now().After(deadline) {
			t.Fatalf("engine processes %v still run on port %d (port free: %v)", enginesOn(port), port, portFree(port))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitResults waits until the run folder holds at least n scenario results.
func waitResults(t *testing.T, dir string, n int, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		f, err := os.Open(filepath.Join(dir, matrix.ResultsFile))
		if err == nil {
			lines := 0
			for sc := bufio.NewScanner(f); sc.Scan(); {
				lines++
			}
			f.Close()
			if lines >= n {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("supervisor ended before %d results", n)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d results after 2 minutes", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startBin(t *testing.T, bin string, args ...string) (*exec.Cmd, <-chan struct{}, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd, done, &stderr
}
