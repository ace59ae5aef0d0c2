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
		{"bad duration", []string{"--duration", "0s"}, "duration"},
		{"resume nothing", []string{"--resume", filepath.Join(t.TempDir(), "none")}, "--resume"},
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
