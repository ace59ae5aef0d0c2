package backend

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRunnerLine(t *testing.T) {
	real := `time=2026-11-27T11:20:08.039Z level=INFO source=server.go:405 msg="starting llama server" cmd="/x/ollama runner --model /m/blobs/sha256-42 --ctx-size 8192 --batch-size 512 --threads 2 --no-mmap --parallel 4 --port 33267"`
	full := RunnerArgs{Parallel: 4, CtxSize: 8192, NumCtx: 2048, BatchSize: 512, Threads: 2, Port: 33267, Model: "/m/blobs/sha256-42"}
	one := full
	one.Parallel, one.NumCtx = 1, 8192
	tests := []struct {
		name string
		line string
		want RunnerArgs
		ok   bool
	}{
		{"real line", real, full, true},
		{"parallel 1", strings.Replace(real, "--parallel 4", "--parallel 1", 1), one, true},
		{"flags with =", `msg="starting llama server" cmd="runner --parallel=3 --ctx-size=96"`, RunnerArgs{Parallel: 3, CtxSize: 96, NumCtx: 32}, true},
		{"simulator", `time=x level=INFO msg="starting llama server" model=qwen parallel=4 ctx-size=16384 size="4.7 GiB"`, RunnerArgs{Parallel: 4, CtxSize: 16384, NumCtx: 4096}, true},
		{"other line", `time=x level=INFO msg="llama runner started in 0.26 seconds"`, RunnerArgs{}, false},
		{"marker in another message", `msg="starting llama server" is what msg="x" says`, RunnerArgs{}, false},
		{"no parallel", `msg="starting llama server" cmd="/x/ollama runner --ctx-size 8"`, RunnerArgs{}, false},
		{"simulator without parallel", `msg="starting llama server" ctx-size=8`, RunnerArgs{}, false},
		{"bad number", `msg="starting llama server" cmd="/x runner --parallel four"`, RunnerArgs{}, false},
		{"negative", `msg="starting llama server" cmd="/x runner --parallel -1"`, RunnerArgs{}, false},
		{"simulator bad number", `msg="starting llama server" parallel=x`, RunnerArgs{}, false},
		{"unterminated", `msg="starting llama server" cmd="/x runner --parallel 4`, RunnerArgs{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRunnerLine(tt.line)
			if ok && got.Line != tt.line {
				t.Errorf("Line = %q, want the whole line", got.Line)
			}
			got.Cmd, got.Line, got.From = "", "", nil
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseRunnerLine = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseRunnerLine(f *testing.F) {
	f.Add(`msg="starting llama server" cmd="/x runner --model /m --parallel 4 --port 1"`)
	f.Add(`msg="starting llama server" cmd="\"\\ --parallel"`)
	f.Add(`msg="starting llama server" parallel=2 ctx-size=9 size="1 GiB"`)
	f.Fuzz(func(t *testing.T, line string) {
		a, ok := ParseRunnerLine(line)
		if ok && (a.Parallel < 0 || a.CtxSize < 0 || !strings.Contains(line, runnerMarker)) {
			t.Fatalf("accepted %q as %+v", line, a)
		}
	})
}
