package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSimulateChildProcess is the child of TestSimulateProcess: it runs
// `supervisor simulate` with the arguments it is given.
func TestSimulateChildProcess(t *testing.T) {
	args := os.Getenv("TOKENTRACE_SIMULATE_CHILD")
	if args == "" {
		t.Skip("runs only as TestSimulateProcess's child")
	}
	os.Exit(run(append([]string{"simulate"}, strings.Fields(args)...)))
}

// TestSimulateProcess runs the simulator as its own process, as the
// supervisor does: configured by Ollama's variables, it really holds each
// slot's KV cache once the model is loaded, and SIGTERM stops it with
// status 0.
func TestSimulateProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("reads the resident memory from /proc")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimulateChildProcess$")
	cmd.Env = append(os.Environ(), "TOKENTRACE_SIMULATE_CHILD=--allocate --weights-scale 0.0001 --time-scale 0.01",
		"OLLAMA_HOST=127.0.0.1:0", "OLLAMA_NUM_PARALLEL=2", "OLLAMA_CONTEXT_LENGTH=2048")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	lines := bufio.NewScanner(stderr)
	addr := ""
	listening := regexp.MustCompile(`Listening on (\S+)`)
	for addr == "" && lines.Scan() {
		if m := listening.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	go func() {
		io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	if addr == "" {
		t.Fatal("the simulator never said where it listens")
	}
	before := residentBytes(t, cmd.Process.Pid)
	resp, err := http.Post("http://"+addr+"/api/generate", "application/json",
		strings.NewReader(`{"model":"qwen2.5:7b-instruct","prompt":"hi","stream":false,"options":{"num_predict":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	after := residentBytes(t, cmd.Process.Pid)
	// Two slots × 2 × 28 layers × 4 KV heads × 128 × 2048 tokens × 2 bytes.
	const kv = 2 * 117440512
	if resp.StatusCode != 200 || after-before < kv*9/10 {
		t.Errorf("status %d; resident memory %d MiB before the load, %d MiB after: want about %d MiB more",
			resp.StatusCode, before>>20, after>>20, kv>>20)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the simulator did not stop on SIGTERM")
	}
}

func residentBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
