package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

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
			if q.Attempt == r.Attempt && !q.Warmup { // warm-up requests are kept for the window's throughput
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
