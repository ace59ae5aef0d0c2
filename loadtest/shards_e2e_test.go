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

// Requests and tokens add up exactly: each shard sends its share of -requests, and the simulator answers
// exactly -max-tokens tokens. Throughput (requests ending in the window / the window) of the merged shards is
// within 20 % of the single attack's: both keep 6 streams in flight on a server with 8 slots, so the server serves
// them at the same rate; what differs is the edges of the window (the first end opens it, the last requests of
// each shard run with fewer streams in flight: about one E2E of ~2.5 s each), the shards' start spread (tens of
// ms), and the machine's noise, which the make target absorbs by running a miss again.
func TestShardsBesideOneAttack(t *testing.T) {
	lt, vg := binaries(t)
	url, model := simulatorURL(t)
	dir := t.TempDir()
	common := []string{"attack", "-url", url, "-model", model, "-max-tokens", "16", "-prompt-size", "small",
		"-concurrency", "6", "-requests", "150"}

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
	if merged.Requests != one.Requests || merged.Succeeded != one.Succeeded || merged.OutputTokens != one.OutputTokens ||
		merged.Requests != 150 || merged.OutputTokens != 150*16 {
		t.Errorf("merged %d requests, %d succeeded, %d output tokens; single %d, %d, %d; want 150, 150, 2400",
			merged.Requests, merged.Succeeded, merged.OutputTokens, one.Requests, one.Succeeded, one.OutputTokens)
	}
	ratio := merged.RequestThroughput / one.RequestThroughput
	t.Logf("single: %.2f requests/s over %.3f s; 3 shards merged: %.2f requests/s over %.3f s (ratio %.3f), start spread %.3f s",
		one.RequestThroughput, one.Window, merged.RequestThroughput, merged.Window, ratio, merged.Shards.StartSpread)
	if ratio < 0.8 || ratio > 1.25 {
		t.Errorf("merged throughput is %.3f× the single attack's; want within 20 %%", ratio)
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
	if err := json.Unmarshal(runBin(t, vg, "report", "-type", "json", files[0]), &vr); err != nil || vr.Requests != 50 || vr.Success != 1 {
		t.Errorf("vegeta report of shard 0: %+v, %v; want 50 requests, all successful", vr, err)
	}
	if err := json.Unmarshal(runBin(t, vg, append([]string{"report", "-type", "json"}, files...)...), &vr); err != nil || vr.Requests != 150 {
		t.Errorf("vegeta report of the 3 shards: %+v, %v; want 150 requests", vr, err)
	}
}
