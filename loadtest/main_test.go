package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeOllama answers every chat with three chunks and Ollama's final one;
// garbage makes it answer bytes that are not NDJSON.
func fakeOllama(t *testing.T, garbage bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		if garbage {
			fmt.Fprint(w, "\x89PNG\r\n\x1a\n garbage {{{\n")
			return
		}
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"t%d\"},\"done\":false}\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "{\"model\":\"m\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":12,\"eval_count\":3,\"eval_duration\":3000000,\"total_duration\":5000000}\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runCmd runs loadtest in-process.
func runCmd(t *testing.T, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdin: bytes.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(env, args)
	return code, out.String(), errb.String()
}

func TestAttackThenReportInEveryEncoding(t *testing.T) {
	url := fakeOllama(t, false)
	for _, enc := range []string{"gob", "json", "csv"} {
		t.Run(enc, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "r."+enc)
			code, _, stderr := runCmd(t, nil, "attack", "-url", url, "-model", "m", "-requests", "5",
				"-concurrency", "2", "-encoding", enc, "-output", file, "-name", "run-"+enc)
			if code != 0 {
				t.Fatalf("attack exit %d: %s", code, stderr)
			}
			code, out, stderr := runCmd(t, nil, "report", "-type", "csv", file)
			if code != 0 {
				t.Fatalf("report exit %d: %s", code, stderr)
			}
			for _, want := range []string{"requests,5\n", "succeeded,5\n", "output_tokens,15\n", "input_tokens,60\n", "ttft_count,5\n", "itl_count,10\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestReportReadsStdinAndSeveralFiles(t *testing.T) {
	url := fakeOllama(t, false)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.bin"), filepath.Join(dir, "b.bin")
	for _, f := range []string{a, b} {
		if code, _, stderr := runCmd(t, nil, "attack", "-url", url, "-model", "m", "-requests", "3", "-output", f, "-name", filepath.Base(f)); code != 0 {
			t.Fatalf("attack: %s", stderr)
		}
	}
	code, out, stderr := runCmd(t, nil, "report", "-type", "json", a, b)
	if code != 0 || !strings.Contains(out, `"requests": 6`) || !strings.Contains(out, `"a.bin"`) {
		t.Fatalf("report of two files: exit %d %s\n%s", code, stderr, out)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, data, "report")
	if code != 0 || !strings.Contains(out, "3, 3, 100.00%") {
		t.Fatalf("report from stdin: exit %d\n%s", code, out)
	}
	code, out, stderr = runCmd(t, data, "plot")
	if code != 0 || !strings.Contains(out, `a.bin: TTFT`) {
		t.Fatalf("plot: exit %d %s (%d bytes)", code, stderr, len(out))
	}
}

func TestBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	badPrompts := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(badPrompts, []byte("{\"prompt\":\"ok\"}\n{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
		wantErr  string
	}{
		{"no command", nil, nil, 2, "Usage"},
		{"unknown command", []string{"siege"}, nil, 2, "unknown command"},
		{"unknown flag", []string{"attack", "-url", closed, "-bogus"}, nil, 2, "-bogus"},
		{"unknown prompt size", []string{"attack", "-url", closed, "-prompt-size", "huge"}, nil, 2, "huge"},
		{"no url", []string{"attack"}, nil, 2, "URL"},
		{"bad api", []string{"attack", "-url", closed, "-api", "grpc"}, nil, 2, "API"},
		{"bad warmup", []string{"attack", "-url", closed, "-warmup", "soon"}, nil, 2, "-warmup"},
		{"bad prompts file", []string{"attack", "-url", closed, "-prompts", badPrompts}, nil, 2, "line 2"},
		{"bad encoding", []string{"attack", "-url", closed, "-encoding", "xml"}, nil, 2, "xml"},
		{"bad slo", []string{"report", "-slo", "ttft=soon"}, nil, 2, "ttft"},
		{"bad report type", []string{"report", "-type", "yaml"}, nil, 2, "yaml"},
		{"report of garbage", []string{"report"}, []byte("this is not a result file\n"), 1, "not vegeta's"},
		{"report of nothing", []string{"report"}, nil, 1, "empty"},
		{"missing file", []string{"report", "/nonexistent/r.bin"}, nil, 1, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tc.stdin, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestFailingTargetsBecomeErrorRecords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name, url, wantType, wantWhy string
	}{
		{"unreachable", closed, "transport", "connection refused"},
		{"garbage", fakeOllama(t, true), "malformed_stream", "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, results, stderr := runCmd(t, nil, "attack", "-url", tc.url, "-requests", "4", "-concurrency", "2")
			if code != 0 {
				t.Fatalf("attack exit %d: %s", code, stderr)
			}
			code, out, stderr := runCmd(t, []byte(results), "report")
			if code != 0 {
				t.Fatalf("report exit %d: %s", code, stderr)
			}
			for _, want := range []string{"4, 0, 0.00%", tc.wantType + ": 4", tc.wantWhy} {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestOpenLoopIsNotCappedByDefault(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprint(w, "{\"message\":{\"content\":\"x\"},\"done\":false}\n{\"done\":true,\"eval_count\":1}\n")
	}))
	t.Cleanup(srv.Close)
	code, _, stderr := runCmd(t, nil, "attack", "-url", srv.URL, "-rate", "50", "-requests", "10", "-output", filepath.Join(t.TempDir(), "r"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if most < 3 {
		t.Fatalf("at most %d requests in flight at 50/s of 300 ms answers: the open loop was capped", most)
	}
}
