package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// TestCapacitySearchOnTheSimulator runs --search on the simulator as users
// run it. The SLO is loose (1 s TTFT p95 for 20-token answers at a fifth
// of real time), so both settings reach --max-concurrency: the search's
// bound path, every probe recorded, the files and the report section.
// The exact capacities are checked against an engine of known capacity in
// internal/matrix (TestCapacityOfAKnownEngine).
func TestCapacitySearchOnTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a capacity search on the simulator")
	}
	bin := buildSupervisor(t)
	out := filepath.Join(t.TempDir(), "run")
	port := freePort(t)
	stdout, stderr, code := runBin(t, bin, 3*time.Minute, fastSim(out, port, "--prompt-sizes", "small", "--num-parallel", "1,2",
		"--search", "concurrency", "--max-concurrency", "4", "--slo", "ttft_p95=1s,tpot_p95=500ms")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	waitNoEngine(t, port)
	caps, probes, err := matrix.LoadCapacity(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 2 || len(probes) != 6 {
		t.Fatalf("%d capacity rows and %d probes, want 2 and 6 (1, 2, 4 users per setting)\n%s", len(caps), len(probes), stderr)
	}
	for _, c := range caps {
		if c.MaxConcurrency != 4 || !c.AtBound || c.Probes != 3 || c.Status != matrix.StatusOK ||
			c.TTFTP95Ms > 1000 || c.GoodputRPS <= 0 || c.PeakMemBytes == 0 || c.MeanOutputTokens <= 0 {
			t.Errorf("%s: %+v", c.Name, c)
		}
	}
	_, results, _, err := matrix.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 6 {
		t.Errorf("%d scenario results, want one per probe (6)", len(results))
	}
	csv, _ := os.ReadFile(filepath.Join(out, matrix.CapacityCSV))
	if !strings.HasPrefix(string(csv), "parallel,num_ctx,prompt_size,search,slo,max_concurrency,max_rate_rps,") {
		t.Errorf("capacity.csv:\n%s", csv)
	}
	report, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !bytes.Contains(report, []byte("## Capacity under the SLO")) || !strings.Contains(stdout, "2 settings served the search's bound within ttft_p95=1s,tpot_p95=500ms") {
		t.Errorf("report or answer missing:\n%s", stdout)
	}
	if b, err := os.ReadFile(filepath.Join(out, "capacity.png")); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("capacity.png: %v", err)
	}
}

// TestRunOpenLoopRates: --rates runs open-loop scenarios (Poisson
// arrivals, no cap), named by their rate, with their figures and report
// rows; --concurrency "" runs rates only.
func TestRunOpenLoopRates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix on the simulator")
	}
	bin := buildSupervisor(t)
	out := filepath.Join(t.TempDir(), "run")
	port := freePort(t)
	_, stderr, code := runBin(t, bin, 3*time.Minute, fastSim(out, port, "--prompt-sizes", "small", "--num-parallel", "2",
		"--concurrency", "", "--rates", "4")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	waitNoEngine(t, port)
	_, results, _, err := matrix.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Name != "p2-ctx1024-r4-small" || results[0].Rate != 4 || results[0].Status != matrix.StatusOK ||
		results[0].Requests == 0 || results[0].Errors != 0 {
		t.Fatalf("results %+v", results)
	}
	// 1.5 s at 4 requests/s: a Poisson count, so only a wide bound.
	if n := results[0].Requests; n < 1 || n > 20 {
		t.Errorf("%d requests in 1.5 s at 4/s", n)
	}
	report, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !bytes.Contains(report, []byte("| p2-ctx1024-r4-small | ok |")) {
		t.Errorf("report lacks the open-loop row")
	}
}
