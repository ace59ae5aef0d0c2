package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/stats"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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

func TestRunMatrixReportEqualsRawResults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix on the simulator")
	}
	bin := buildSupervisor(t)
	out := filepath.Join(t.TempDir(), "run")
	port := freePort(t)
	stdout, stderr, code := runBin(t, bin, 3*time.Minute,
		fastSim(out, port, "--concurrency", "1,2", "--prompt-sizes", "small", "--num-parallel", "1,2")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	waitNoEngine(t, port)
	if !strings.Contains(stdout, "report.md") || !strings.Contains(stdout, "| TTFT p50 (ms) |") {
		t.Errorf("output lacks the report's path and summary:\n%s", stdout)
	}
	h, results, reqs, err := matrix.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want 4", len(results))
	}
	if h.Model.Digest == "" || h.Engine.Version == "" || h.Machine.CPUs == 0 || len(h.KVBytesPerSlot) == 0 {
		t.Errorf("run header lacks engine, model or machine: %+v", h)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	peak := map[int]uint64{}
	for _, r := range results {
		if r.Status != matrix.StatusOK || r.Errors != 0 || r.Requests == 0 {
			t.Fatalf("%s: %s, %d requests, %d errors: %s", r.Name, r.Status, r.Requests, r.Errors, r.Note)
		}
		if r.Verified != "yes" || r.RunnerParallel != r.Parallel {
			t.Errorf("%s: parallelism not verified: %q", r.Name, r.Verified)
		}
		peak[r.Parallel] = max(peak[r.Parallel], r.PeakMemBytes)
		// Recompute the figures from the raw requests, independently of
		// the code that wrote the report.
		var ttft, e2e, tps []float64
		var tokens int
		var first, last time.Time
		for _, q := range reqs {
			if q.Attempt != r.Attempt {
				continue
			}
			e2e = append(e2e, q.E2EMs)
			if q.HasTTFT {
				ttft = append(ttft, q.TTFTMs)
			}
			if q.TokPerSec > 0 { // defined for two or more output tokens
				tps = append(tps, q.TokPerSec)
			}
			tokens += q.OutputTokens
			end := q.Start.Add(time.Duration(q.E2EMs * 1e6))
			if first.IsZero() || q.Start.Before(first) {
				first = q.Start
			}
			if end.After(last) {
				last = end
			}
		}
		// Throughput: every measured token over the duration, or the time
		// the requests took when longer.
		window := max(1500*time.Millisecond, last.Sub(first))
		row := fmt.Sprintf("| %s | ok | %d | 0 | %.2f | %.2f | %.2f | %.2f |", r.Name, len(e2e),
			stats.Quantile(ttft, 0.5), stats.Quantile(e2e, 0.5), stats.Summarize(tps).Mean, float64(tokens)/window.Seconds())
		if !bytes.Contains(report, []byte(row)) {
			got := ""
			for _, line := range strings.Split(string(report), "\n") {
				if strings.HasPrefix(line, "| "+r.Name+" |") {
					got = line
				}
			}
			t.Errorf("report.md's row differs from the one computed from the raw requests:\nwant %s\ngot  %s", row, got)
		}
	}
	if peak[2] <= peak[1] {
		t.Errorf("peak memory with 2 slots %d ≤ with 1 slot %d", peak[2], peak[1])
	}
	for _, chart := range []string{"ttft_vs_concurrency.png", "tok_per_s.png", "throughput.png", "memory.png"} {
		b, err := os.ReadFile(filepath.Join(out, chart))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("chart %s missing or not a PNG: %v", chart, err)
		}
	}
	// `supervisor report` regenerates the same report.
	before := report
	os.Remove(filepath.Join(out, "report.md"))
	if _, stderr, code := runBin(t, bin, time.Minute, "report", out); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	again, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !bytes.Equal(before, again) {
		t.Error("supervisor report wrote a different report.md")
	}
}

func TestRunOOMIsRecordedAndTheMatrixGoesOn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix on the simulator")
	}
	bin := buildSupervisor(t)
	for _, tc := range []struct{ name, simFlag string }{
		{"load refused", ""},
		{"engine exits", "--sim-flag=-exit-on-oom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			port := freePort(t)
			// 8 slots of a 1024 context do not fit in 4700 MiB beside the
			// weights; 1 slot does.
			args := fastSim(out, port, "--concurrency", "1", "--prompt-sizes", "small,medium",
				"--num-parallel", "8,1", "--sim-flag=-memory-limit=4700MiB")
			if tc.simFlag != "" {
				args = append(args, tc.simFlag)
			}
			_, stderr, code := runBin(t, bin, 2*time.Minute, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			waitNoEngine(t, port)
			_, results, _, err := matrix.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			status := map[string]string{}
			for _, r := range results {
				status[r.Name] = r.Status
				if r.Status == matrix.StatusOOM && !strings.Contains(r.Note, "memory") {
					t.Errorf("%s: OOM note does not say memory: %q", r.Name, r.Note)
				}
			}
			want := map[string]string{"p8-ctx1024-c1-small": "oom", "p8-ctx1024-c1-medium": "oom",
				"p1-ctx1024-c1-small": "ok", "p1-ctx1024-c1-medium": "ok"}
			for name, st := range want {
				if status[name] != st {
					t.Errorf("%s: status %q, want %q (all: %v)", name, status[name], st, status)
				}
			}
			report, _ := os.ReadFile(filepath.Join(out, "report.md"))
			if !bytes.Contains(report, []byte("| p8-ctx1024-c1-small | OOM |")) {
				t.Errorf("report does not list the OOM scenario:\n%s", report)
			}
		})
	}
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

func TestInterruptedRunLeavesNoEngineAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix on the simulator")
	}
	bin := buildSupervisor(t)
	out := filepath.Join(t.TempDir(), "run")
	port := freePort(t)
	args := fastSim(out, port, "--concurrency", "1,2", "--prompt-sizes", "small,medium", "--num-parallel", "1,2")

	// SIGINT: the supervisor stops the engine itself and says how to resume.
	cmd, done, stderr := startBin(t, bin, args...)
	waitResults(t, out, 1, done)
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor did not end within 30 s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("after SIGINT: exit %d, stderr:\n%s", code, stderr.String())
	}
	waitNoEngine(t, port)
	_, results, _, err := matrix.Load(out)
	if err != nil || len(results) < 1 {
		t.Fatalf("after SIGINT: %d results on disk, %v", len(results), err)
	}
	afterInt := len(results)

	// SIGKILL: nothing in the supervisor runs; the kernel and the guard
	// stop the engine.
	cmd, done, _ = startBin(t, bin, "run", "--resume", out, "--port", strconv.Itoa(port))
	waitResults(t, out, afterInt+1, done)
	if len(enginesOn(port)) == 0 {
		t.Fatal("no engine runs on the port during the resumed run")
	}
	cmd.Process.Kill()
	<-done
	waitNoEngine(t, port)

	// --resume completes the rest, each scenario once.
	_, stderrText, code := runBin(t, bin, 3*time.Minute, "run", "--resume", out, "--port", strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("final resume: exit %d\n%s", code, stderrText)
	}
	waitNoEngine(t, port)
	_, results, reqs, err := matrix.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 8 {
		t.Fatalf("%d scenarios after resuming, want 8", len(results))
	}
	for _, r := range results {
		if r.Status != matrix.StatusOK {
			t.Errorf("%s: %s %s", r.Name, r.Status, r.Note)
		}
		n := 0
		for _, q := range reqs {
			if q.Attempt == r.Attempt {
				n++
			}
		}
		if n != r.Requests {
			t.Errorf("%s: %d requests on disk, result says %d", r.Name, n, r.Requests)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "report.md")); err != nil {
		t.Error("no report after the run completed")
	}
}

func TestBadInputFailsBeforeAnythingStarts(t *testing.T) {
	bin := buildSupervisor(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, nil, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown prompt size", []string{"--prompt-sizes", "small,huge"}, `unknown prompt size "huge"`},
		{"zero concurrency", []string{"--concurrency", "0"}, "must be at least 1"},
		{"negative concurrency", []string{"--concurrency", "1,-4"}, "must be at least 1"},
		{"not a number", []string{"--num-parallel", "two"}, "not a whole number"},
		{"missing ollama", []string{"--backend", "ollama", "--ollama-bin", "/nonexistent/ollama"}, "ollama binary"},
		{"port in use", []string{"--port", busyPort}, "port " + busyPort + " is in use"},
		{"unwritable output folder", []string{"--out", filepath.Join(aFile, "run")}, "output folder"},
		{"unknown backend", []string{"--backend", "vllm"}, `unknown --backend "vllm"`},
		{"command without port", []string{"--backend", "command", "--cmd", "sleep 1"}, "{port}"},
		{"bad duration", []string{"--duration", "0s"}, "duration"},
		{"resume nothing", []string{"--resume", filepath.Join(t.TempDir(), "none")}, "--resume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", "--backend", "sim", "--out", out}, tc.args...)
			_, stderr, code := runBin(t, bin, 30*time.Second, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(out, matrix.HeaderFile)); err == nil {
				t.Error("a run was started")
			}
		})
	}
}

func TestCacheTestOnTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	bin := buildSupervisor(t)
	out := filepath.Join(t.TempDir(), "cache")
	port := freePort(t)
	stdout, stderr, code := runBin(t, bin, 2*time.Minute, "cache-test", "--backend", "sim", "--iterations", "5",
		"--prompt-size", "large", "--sim-flag=-time-scale=0.5", "--out", out, "--port", strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	waitNoEngine(t, port)
	b, err := os.ReadFile(filepath.Join(out, "cache-test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res cacheResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 3 {
		t.Fatalf("%d phases, want 3", len(res.Phases))
	}
	cold, warm, fresh := res.Phases[0].Summary, res.Phases[1].Summary, res.Phases[2].Summary
	if warm.Count != 5 || fresh.Count != 5 || cold.Count != 1 {
		t.Fatalf("counts: cold start %d, warm %d, cold prefix %d", cold.Count, warm.Count, fresh.Count)
	}
	// The simulator's prefill is proportional to the uncached prompt, and
	// the model loads on the first request.
	if !(warm.P50 < fresh.P50 && fresh.P50 < cold.P50) || res.BenefitMs <= 0 {
		t.Errorf("TTFT p50: warm prefix %.1f, cold prefix %.1f, cold start %.1f ms; want them increasing", warm.P50, fresh.P50, cold.P50)
	}
	if !strings.Contains(stdout, "| warm prefix | 5 | 0 |") {
		t.Errorf("table missing:\n%s", stdout)
	}
}

// An engine the supervisor did not start runs concurrency × size only.
func TestRunExternalEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix on the simulator")
	}
	bin := buildSupervisor(t)
	sim, err := simulator.New(simulator.Config{Parallel: 2, ContextLength: 1024, TimeScale: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	out := filepath.Join(t.TempDir(), "run")
	_, stderr, code := runBin(t, bin, 2*time.Minute, "run", "--backend", "external", "--url", srv.URL, "--api", "ollama",
		"--model", sim.Profile().Model, "--concurrency", "1,2", "--prompt-sizes", "small", "--num-parallel", "2,4",
		"--num-ctx", "1024", "--duration", "1s", "--warmup", "0s", "--max-tokens", "10", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "cannot be restarted") {
		t.Errorf("the run does not say the engine cannot be restarted:\n%s", stderr)
	}
	h, results, _, err := matrix.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if h.Engine.Restartable || len(results) != 2 {
		t.Fatalf("restartable %v, %d results; want an external engine and 2 scenarios (one setting)", h.Engine.Restartable, len(results))
	}
	for _, r := range results {
		if r.Status != matrix.StatusOK || r.Parallel != 2 || r.Requests == 0 {
			t.Errorf("%s: %s, %d requests: %s", r.Name, r.Status, r.Requests, r.Note)
		}
	}
}

func TestMissingModelSaysHowToGetIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the simulator")
	}
	bin := buildSupervisor(t)
	port := freePort(t)
	_, stderr, code := runBin(t, bin, time.Minute, fastSim(filepath.Join(t.TempDir(), "run"), port,
		"--model", "nosuch:7b", "--concurrency", "1", "--prompt-sizes", "small", "--num-parallel", "1")...)
	if code != 1 || !strings.Contains(stderr, `model "nosuch:7b" is not in this Ollama's models`) ||
		!strings.Contains(stderr, "ollama pull nosuch:7b") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	waitNoEngine(t, port)
}
