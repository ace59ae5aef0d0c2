//go:build shards

package main

// The distributed load path without Kubernetes (make test-loadtest-shards): three `loadtest attack -shard i/3`
// processes, started together by -start-at, against the simulator, merged by `loadtest report`, beside one
// attack of the same total; and the real vegeta CLI reading the shards' files.

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func runBin(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

type mergedReport struct {
	Requests          int     `json:"requests"`
	Succeeded         int     `json:"succeeded"`
	OutputTokens      int     `json:"output_tokens"`
	Window            float64 `json:"window_seconds"`
	RequestThroughput float64 `json:"request_throughput"`
	Shards            struct {
		Count       int      `json:"shards"`
		StartSpread float64  `json:"start_spread_seconds"`
		Warnings    []string `json:"warnings"`
		Rows        []struct {
			Key     string `json:"key"`
			Figures struct {
				Requests int     `json:"requests"`
				Window   float64 `json:"window_seconds"`
			} `json:"figures"`
		} `json:"rows"`
	} `json:"shards"`
}

// One attack and three shards of it each run a 6-second window of 6 streams against a simulator that paces
// every stream at 20 ms a token (16 tokens, about 0.35 s an answer) with 8 slots, so the server serves both at
// the same rate, about 17 requests/s. The merged requests/s (requests ending in the union of the windows / its
// length) is within 20 % of the single attack's, and so the request count: the window's edges differ by about one
// answer (the first end opens it; 0.35 s of 6 s), the shards start tens of ms apart, and on a loaded 2-core
// machine three client processes get less CPU than one; the make target runs a miss again. Tokens are exact:
// every answer has 16.
func TestShardsBesideOneAttack(t *testing.T) {
	lt, vg := binaries(t)
	url, model := pacedSimulatorURL(t, 20*time.Millisecond)
	dir := t.TempDir()
	common := []string{"attack", "-url", url, "-model", model, "-max-tokens", "16", "-prompt-size", "small",
		"-concurrency", "6", "-duration", "6s"}

	single := filepath.Join(dir, "single.bin")
	runBin(t, lt, append(common, "-output", single)...)

	startAt := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
	files := make([]string, 3)
	var wg sync.WaitGroup
	for i := range files {
		files[i] = filepath.Join(dir, "shard-"+itoa(i)+".bin")
		wg.Go(func() {
			runBin(t, lt, append(common, "-shard", itoa(i)+"/3", "-start-at", startAt, "-pod", "host-"+itoa(i),
				"-output", files[i])...)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	var one, merged mergedReport
	if err := json.Unmarshal(runBin(t, lt, "report", "-type", "json", single), &one); err != nil {
		t.Fatal(err)
	}
	out := runBin(t, lt, append([]string{"report", "-type", "json", "-by", "pod"}, files...)...)
	if err := json.Unmarshal(out, &merged); err != nil {
		t.Fatalf("merged report: %v\n%s", err, out)
	}
	for _, r := range []mergedReport{one, merged} {
		if r.Succeeded != r.Requests || r.OutputTokens != 16*r.Requests || r.Requests < 20 {
			t.Errorf("%d requests, %d succeeded, %d output tokens; want all successful, 16 tokens each, at least 20",
				r.Requests, r.Succeeded, r.OutputTokens)
		}
	}
	ratio := merged.RequestThroughput / one.RequestThroughput
	count := float64(merged.Requests) / float64(one.Requests)
	t.Logf("single: %d requests, %.2f requests/s over %.3f s; 3 shards merged: %d requests, %.2f requests/s over %.3f s (ratio %.3f), start spread %.3f s",
		one.Requests, one.RequestThroughput, one.Window, merged.Requests, merged.RequestThroughput, merged.Window, ratio, merged.Shards.StartSpread)
	if ratio < 0.8 || ratio > 1.25 || count < 0.8 || count > 1.25 {
		t.Errorf("merged throughput is %.3f× and the request count %.3f× the single attack's; want both within 20 %%", ratio, count)
	}
	shardRequests := 0
	for _, row := range merged.Shards.Rows {
		shardRequests += row.Figures.Requests
	}
	if shardRequests != merged.Requests {
		t.Errorf("the rows hold %d requests, the merged report %d", shardRequests, merged.Requests)
	}
	if merged.Shards.Count != 3 || len(merged.Shards.Rows) != 3 {
		t.Fatalf("%d shards, %d rows; want 3 and 3", merged.Shards.Count, len(merged.Shards.Rows))
	}
	for _, row := range merged.Shards.Rows {
		if row.Figures.Window > merged.Window+1e-9 {
			t.Errorf("pod %s's window %.3f s is longer than the merged one %.3f s: the merged window must be their union",
				row.Key, row.Figures.Window, merged.Window)
		}
	}
	// -late 1s is the default: a shard process that woke more than a second late on this machine is a warning,
	// which is reported, not failed on.
	if len(merged.Shards.Warnings) > 0 {
		t.Logf("warnings: %q", merged.Shards.Warnings)
	}

	// The real vegeta reads a shard's file, and all three.
	var vr struct {
		Requests int     `json:"requests"`
		Success  float64 `json:"success"`
	}
	if err := json.Unmarshal(runBin(t, vg, "report", "-type", "json", files[0]), &vr); err != nil ||
		vr.Requests != merged.Shards.Rows[0].Figures.Requests || vr.Success != 1 {
		t.Errorf("vegeta report of shard 0: %+v, %v; want %d requests, all successful", vr, err, merged.Shards.Rows[0].Figures.Requests)
	}
	if err := json.Unmarshal(runBin(t, vg, append([]string{"report", "-type", "json"}, files...)...), &vr); err != nil || vr.Requests != merged.Requests {
		t.Errorf("vegeta report of the 3 shards: %+v, %v; want %d requests", vr, err, merged.Requests)
	}
}
