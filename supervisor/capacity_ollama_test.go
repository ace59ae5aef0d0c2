//go:build ollama

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// TestRealOllamaCapacity runs the capacity search on the real Ollama with
// the generated model at parallel 1, 2 and 4: each setting's capacity under
// TTFT p95 ≤ 1 s and TPOT p95 ≤ 500 ms with 16-token answers, with every
// probe recorded and the report's section written. (An idle machine serves
// this tiny model at hundreds of tokens per second, so every setting may
// reach the bound of 8 users; a busy one shows the queueing.) The figures depend on the machine; they are logged, and
// docs/supervisor.md has a run's.
func TestRealOllamaCapacity(t *testing.T) {
	cmd, out, port := ollamaRun(t, "--num-parallel", "1,2,4", "--num-ctx", "8192", "--max-tokens", "16",
		"--search", "concurrency", "--max-concurrency", "8", "--slo", "ttft_p95=1s,tpot_p95=500ms",
		"--duration", "10s", "--warmup", "4s")
	output := runWithin(t, cmd, 12*time.Minute)
	t.Logf("supervisor output:\n%s", output)
	waitNoEngine(t, port)
	caps, probes, err := matrix.LoadCapacity(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 3 || len(probes) < 3 {
		t.Fatalf("%d capacity rows and %d probes, want 3 and at least one per setting", len(caps), len(probes))
	}
	for _, c := range caps {
		t.Logf("p=%d: capacity %s, goodput %.2f req/s, TTFT p95 %.0f ms, TPOT p95 %.1f ms, mean output tokens %.1f, peak memory %d MiB, %d probes",
			c.Parallel, c.Describe(), c.GoodputRPS, c.TTFTP95Ms, c.TPOTP95Ms, c.MeanOutputTokens, c.PeakMemBytes>>20, c.Probes)
		if c.Status != matrix.StatusOK || c.Probes < 1 {
			t.Errorf("p=%d: %s %s after %d probes", c.Parallel, c.Status, c.Note, c.Probes)
		}
	}
	_, results, _, err := matrix.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Verified != "yes" {
			t.Errorf("%s: parallelism not verified: %s", r.Name, r.Verified)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "capacity.png")); err != nil {
		t.Error(err)
	}
}
