package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
