package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/stats"
)

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
		// The window opens when the warm-up ends and lasts the duration;
		// every successful request that ends inside it counts in the
		// throughput, warm-up requests included; only requests started
		// inside it count in the latencies.
		if got := r.Window.End.Sub(r.Window.Start); got != 1500*time.Millisecond {
			t.Errorf("%s: window %s, want the duration 1.5s", r.Name, got)
		}
		for _, q := range reqs {
			if q.Attempt != r.Attempt {
				continue
			}
			end := q.Start.Add(time.Duration(q.E2EMs * 1e6))
			if q.OK && !end.Before(r.Window.Start) && !end.After(r.Window.End) {
				tokens += q.OutputTokens
			}
			if q.Warmup {
				continue
			}
			if q.Start.Before(r.Window.Start) {
				t.Errorf("%s: a measured request started %s before the window", r.Name, r.Window.Start.Sub(q.Start))
			}
			e2e = append(e2e, q.E2EMs)
			if q.HasTTFT {
				ttft = append(ttft, q.TTFTMs)
			}
			if q.TokPerSec > 0 { // defined for two or more output tokens
				tps = append(tps, q.TokPerSec)
			}
		}
		window := 1500 * time.Millisecond
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

// TestRunExternalOpenAIServer: an OpenAI-compatible server (vLLM,
// llama.cpp) has no /api/version; the external backend waits for its own
// API's path, /v1/models, and runs.
func TestRunExternalOpenAIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix on the simulator")
	}
	bin := buildSupervisor(t)
	sim, err := simulator.New(simulator.Config{Parallel: 2, ContextLength: 1024, TimeScale: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	openaiOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			http.NotFound(w, r)
			return
		}
		sim.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(openaiOnly)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	out := filepath.Join(t.TempDir(), "run")
	_, stderr, code := runBin(t, bin, 2*time.Minute, "run", "--backend", "external", "--url", srv.URL,
		"--model", sim.Profile().Model, "--concurrency", "1", "--prompt-sizes", "small", "--num-parallel", "2",
		"--num-ctx", "1024", "--duration", "1s", "--warmup", "0s", "--max-tokens", "10", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	_, results, _, err := matrix.Load(out)
	if err != nil || len(results) != 1 || results[0].Status != matrix.StatusOK || results[0].Requests == 0 {
		t.Fatalf("results %+v (%v)\n%s", results, err, stderr)
	}
}
