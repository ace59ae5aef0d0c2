package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

func TestBadInputFailsBeforeAnythingStarts(t *testing.T) {
	bin := buildSupervisor(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, nil, 0o644)
	saved := filepath.Join(t.TempDir(), "saved")
	if _, err := matrix.Create(saved, matrix.Header{Settings: matrix.Settings{Backend: "sim", Model: "qwen2.5:7b-instruct", API: "ollama",
		Concurrency: []int{1}, PromptSizes: []string{"small"}, NumParallel: []int{1}, NumCtx: []int{1024},
		Duration: matrix.Duration(time.Second), Warmup: matrix.Duration(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown prompt size", []string{"--prompt-sizes", "small,huge"}, `unknown prompt size "huge"`},
		{"zero concurrency", []string{"--concurrency", "0"}, "must be at least 1"},
		{"negative concurrency", []string{"--concurrency", "1,-4"}, "must be at least 1"},
		{"not a number", []string{"--num-parallel", "two"}, "not a whole number"},
		{"missing ollama", []string{"--backend", "ollama", "--ollama-bin", "/nonexistent/ollama"}, "ollama binary"},
		{"port in use", []string{"--port", busyPort}, "port " + busyPort + " is in use"},
		{"unwritable output folder", []string{"--out", filepath.Join(aFile, "run")}, "output folder"},
		{"unknown backend", []string{"--backend", "vllm"}, `unknown --backend "vllm"`},
		{"command without port", []string{"--backend", "command", "--cmd", "sleep 1"}, "{port}"},
		{"command without parallel", []string{"--backend", "command", "--cmd", "sleep {port}"}, "{parallel}"},
		{"bad duration", []string{"--duration", "0s"}, "duration"},
		{"resume nothing", []string{"--resume", filepath.Join(t.TempDir(), "none")}, "--resume"},
		{"resume another model", []string{"--resume", saved, "--model", "llama3:8b"}, `the run used --model "qwen2.5:7b-instruct"`},
		{"resume another duration", []string{"--resume", saved, "--num-parallel", "2", "--duration", "9s"}, "--duration differs"},
		{"resume a fixed run as a search", []string{"--resume", saved, "--search", "concurrency", "--slo", "ttft_p95=1s"}, "--slo differs"},
		{"retry without resume", []string{"--retry-failed"}, "--retry-failed needs --resume"},
		{"search without slo", []string{"--search", "concurrency"}, "needs --slo"},
		{"bad slo", []string{"--slo", "ttft=1s"}, "name a percentile"},
		{"bad rates", []string{"--rates", "1,-2"}, "--rates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", "--backend", "sim", "--out", out}, tc.args...)
			_, stderr, code := runBin(t, bin, 30*time.Second, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(out, matrix.HeaderFile)); err == nil {
				t.Error("a run was started")
			}
		})
	}
}
