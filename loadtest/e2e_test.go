//go:build e2e

package main

// End-to-end tests of the loadtest binary with the real vegeta CLI
// (TOKENTRACE_VEGETA_BIN, installed by `make test-loadtest`): every result
// encoding reads in `vegeta report`, pipes compose, and SIGINT leaves every
// record whole.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowOllama streams 20 chunks 20 ms apart.
func slowOllama(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := 0; i < 20; i++ {
			fmt.Fprintf(w, "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"t%d\"},\"done\":false}\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "{\"model\":\"m\",\"done\":true,\"done_reason\":\"length\",\"eval_count\":20,\"prompt_eval_count\":5}\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func execCmd(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stderr = &bytes.Buffer{}
	return cmd
}

func output(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, cmd.Stderr)
	}
	return out
}

type vegetaReport struct {
	Requests    int                 `json:"requests"`
	Success     float64             `json:"success"`
	BytesIn     struct{ Total int } `json:"bytes_in"`
	StatusCodes map[string]int      `json:"status_codes"`
}

func TestVegetaReadsEveryEncoding(t *testing.T) {
	lt, vg := binaries(t)
	url := fakeOllama(t, false)
	for _, enc := range []string{"gob", "json", "csv"} {
		t.Run(enc, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "r."+enc)
			output(t, execCmd(t, lt, "attack", "-url", url, "-model", "m", "-requests", "7", "-concurrency", "3",
				"-encoding", enc, "-output", file))
			var rep vegetaReport
			out := output(t, execCmd(t, vg, "report", "-type", "json", file))
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("vegeta report: %v\n%s", err, out)
			}
			if rep.Requests != 7 || rep.Success != 1 || rep.StatusCodes["200"] != 7 || rep.BytesIn.Total == 0 {
				t.Fatalf("vegeta report of %s: %s", enc, out)
			}
			// vegeta's own re-encoding keeps the figures loadtest report reads.
			for _, to := range []string{"json", "csv", "gob"} {
				enc := execCmd(t, vg, "encode", "-to", to, file)
				re := output(t, enc)
				rpt := execCmd(t, lt, "report", "-type", "csv")
				rpt.Stdin = bytes.NewReader(re)
				got := string(output(t, rpt))
				if !strings.Contains(got, "requests,7\n") || !strings.Contains(got, "output_tokens,21\n") ||
					!strings.Contains(got, "ttft_count,7\n") {
					t.Fatalf("loadtest report after vegeta encode -to %s:\n%s", to, got)
				}
			}
		})
	}
}

func TestPipeIntoVegetaAndTee(t *testing.T) {
	lt, vg := binaries(t)
	url := fakeOllama(t, false)
	tee := filepath.Join(t.TempDir(), "r.bin")
	sh := fmt.Sprintf("%q attack -url %s -model m -requests 5 | tee %q | %q report -type json", lt, url, tee, vg)
	out := output(t, execCmd(t, "bash", "-o", "pipefail", "-c", sh))
	var rep vegetaReport
	if err := json.Unmarshal(out, &rep); err != nil || rep.Requests != 5 {
		t.Fatalf("attack | vegeta report: %v\n%s", err, out)
	}
	got := string(output(t, execCmd(t, lt, "report", "-type", "csv", tee)))
	if !strings.Contains(got, "requests,5\n") {
		t.Fatalf("loadtest report of the tee'd file:\n%s", got)
	}
}

func TestSIGINTLeavesEveryRecordWhole(t *testing.T) {
	lt, vg := binaries(t)
	url := slowOllama(t)
	tests := []struct {
		name     string
		signals  int
		wantCode int
		wantType string // error type of the records in flight
	}{
		{"one signal waits for requests in flight", 1, 0, ""},
		{"two signals cancel them", 2, 1, "canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "r.bin")
			cmd := execCmd(t, lt, "attack", "-url", url, "-model", "m", "-concurrency", "4", "-output", file)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
			})
			time.Sleep(600 * time.Millisecond) // a bit more than one round of 400 ms answers
			for i := 0; i < tc.signals; i++ {
				cmd.Process.Signal(syscall.SIGINT)
				time.Sleep(20 * time.Millisecond)
			}
			var err error
			select {
			case err = <-done:
				done <- err
			case <-time.After(5 * time.Second):
				t.Fatal("attack did not stop within 5s of SIGINT")
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.wantCode {
				t.Fatalf("exit %d (%v), want %d; stderr:\n%s", code, err, tc.wantCode, cmd.Stderr)
			}
			var rep vegetaReport
			out := output(t, execCmd(t, vg, "report", "-type", "json", file))
			if err := json.Unmarshal(out, &rep); err != nil || rep.Requests < 8 {
				t.Fatalf("vegeta report after SIGINT: %v\n%s", err, out)
			}
			got := string(output(t, execCmd(t, lt, "report", "-type", "csv", file)))
			if !strings.Contains(got, fmt.Sprintf("requests,%d\n", rep.Requests)) {
				t.Fatalf("loadtest and vegeta disagree on the count (%d):\n%s", rep.Requests, got)
			}
			if tc.wantType == "" && !strings.Contains(got, fmt.Sprintf("succeeded,%d\n", rep.Requests)) {
				t.Fatalf("a graceful stop lost or cut requests:\n%s", got)
			}
			if tc.wantType != "" && !strings.Contains(got, "errors_"+tc.wantType+",4\n") {
				t.Fatalf("want the 4 requests in flight as %s errors:\n%s", tc.wantType, got)
			}
		})
	}
}
