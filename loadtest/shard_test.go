package main

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/simulator"
)

// simulatorURL serves the simulator's tiny profile in-process, with no load time: every answer is exactly
// maxTokens long.
func simulatorURL(t *testing.T) (url, model string) {
	t.Helper()
	return pacedSimulatorURL(t, 0)
}

// pacedSimulatorURL is simulatorURL with, when step > 0, one decode step of step per token whatever the number
// of streams: the server, not the clients' CPU, sets the pace.
func pacedSimulatorURL(t *testing.T, step time.Duration) (url, model string) {
	t.Helper()
	p := simulator.Profiles["tiny"]
	p.LoadTime = 0
	if step > 0 {
		p.StepBase, p.StepPerSeq = step, 0
	}
	sim, err := simulator.New(simulator.Config{CustomProfile: &p, Parallel: 8, MaxQueue: 64})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return srv.URL, p.Model
}

// Three shards of one attack, started together, merge into the counts of the whole: the requests and tokens
// exactly (each shard sends its share of -requests; every answer has -max-tokens tokens), with a row per pod.
// Timing is not asserted here (make test-loadtest-shards compares throughput, serially).
func TestShardsMergeIntoTheWhole(t *testing.T) {
	url, model := simulatorURL(t)
	dir := t.TempDir()
	startAt := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	files := make([]string, 3)
	var wg sync.WaitGroup
	for i := range files {
		files[i] = filepath.Join(dir, "shard"+itoa(i)+".bin")
		wg.Go(func() {
			code, _, stderr := runCmd(t, nil, "attack", "-url", url, "-model", model, "-max-tokens", "4",
				"-prompt-size", "small", "-concurrency", "6", "-requests", "31", "-shard", itoa(i)+"/3",
				"-start-at", startAt, "-pod", "pod-"+itoa(i), "-node", "node-"+itoa(i%2), "-output", files[i])
			if code != 0 {
				t.Errorf("shard %d: exit %d: %s", i, code, stderr)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// -late 1m: how late a goroutine wakes on a loaded machine is not what this test checks.
	code, out, stderr := runCmd(t, nil, append([]string{"report", "-type", "json", "-by", "pod", "-late", "1m"}, files...)...)
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	var rep struct {
		Requests     int `json:"requests"`
		Succeeded    int `json:"succeeded"`
		OutputTokens int `json:"output_tokens"`
		Shards       struct {
			Count int `json:"shards"`
			Rows  []struct {
				Key     string
				Shards  []int
				Figures struct{ Requests int }
			}
			Warnings []string
		} `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	if rep.Requests != 31 || rep.Succeeded != 31 || rep.OutputTokens != 31*4 {
		t.Errorf("merged: %d requests, %d succeeded, %d output tokens; want 31, 31, 124", rep.Requests, rep.Succeeded, rep.OutputTokens)
	}
	if rep.Shards.Count != 3 || len(rep.Shards.Rows) != 3 || len(rep.Shards.Warnings) != 0 {
		t.Fatalf("shards %d, rows %d, warnings %q; want 3, 3, none", rep.Shards.Count, len(rep.Shards.Rows), rep.Shards.Warnings)
	}
	for i, row := range rep.Shards.Rows {
		want := []int{11, 10, 10}[i] // 31 split over 3
		if row.Key != "pod-"+itoa(i) || row.Figures.Requests != want {
			t.Errorf("row %d: %s with %d requests, want pod-%d with %d", i, row.Key, row.Figures.Requests, i, want)
		}
	}

	// A folder stands for the files in it (a shared volume read by a shell-less container).
	code, out, stderr = runCmd(t, nil, "report", "-type", "csv", dir)
	if code != 0 || !strings.Contains(out, "requests,31\n") || !strings.Contains(out, "shards,3\n") {
		t.Errorf("report of the folder (exit %d, %s):\n%s", code, stderr, out)
	}

	// Without shard 2, the report says so.
	code, out, _ = runCmd(t, nil, "report", files[0], files[1])
	if code != 0 || !strings.Contains(out, "WARNING: shard 2/3: no results") {
		t.Errorf("report of 2 of 3 shards (exit %d) does not warn about the missing one:\n%s", code, out)
	}
}

func TestShardFlagsRefuseBadInput(t *testing.T) {
	url, model := simulatorURL(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-shard", "3/3"}, "-shard"},
		{[]string{"-shard", "0/8", "-concurrency", "4"}, "smaller than the number of shards"},
		{[]string{"-start-at", "tomorrow"}, "-start-at"},
		{[]string{"-pod", "p"}, "-pod and -node name a shard"},
	} {
		args := append([]string{"attack", "-url", url, "-model", model, "-requests", "8"}, tc.args...)
		code, _, stderr := runCmd(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error naming %q", tc.args, code, stderr, tc.want)
		}
	}
	code, _, stderr := runCmd(t, nil, "report", "-by", "zone")
	if code != 2 || !strings.Contains(stderr, "-by") {
		t.Errorf("report -by zone: exit %d, %q", code, stderr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
