package backend

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLogWatchReadsRunnerArgsAndMemory(t *testing.T) {
	for _, tc := range []struct {
		name          string
		lines         string
		parallel, ctx int
		memory        int
	}{
		{"ollama", `time=2026-01-01T00:00:00Z level=INFO source=server.go:405 msg="starting llama server" cmd="/x/ollama runner --model /m --ctx-size 8192 --batch-size 512 --threads 2 --no-mmap --parallel 2 --port 1"` + "\n", 2, 8192, 0},
		{"simulator", `time=x level=INFO msg="starting llama server" model=qwen parallel=4 ctx-size=16384 size="4.7 GiB"` + "\n", 4, 16384, 0},
		{"split across writes", "msg=\"starting llama ser", 0, 0, 0},
		{"oom", "Error: model requires more system memory (9.0 GiB) than is available (1.0 GiB)\nllama runner process has terminated: signal: killed\n", 0, 0, 2},
		{"no false alarm", "level=INFO msg=\"system memory\" total=\"23.5 GiB\" free=\"20 GiB\"\nzoom room bloom\n", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newLogWatch(io.Discard)
			for _, part := range strings.SplitAfter(tc.lines, " ") { // many small writes
				w.Write([]byte(part))
			}
			ra, ok := w.Runner()
			if ok != (tc.parallel > 0) || ra.Parallel != tc.parallel || ra.CtxSize != tc.ctx {
				t.Errorf("Runner() = %+v, %v; want parallel %d ctx %d", ra, ok, tc.parallel, tc.ctx)
			}
			if n, _ := w.MemoryErrors(); n != tc.memory {
				t.Errorf("memory lines %d, want %d", n, tc.memory)
			}
		})
	}
}

func TestKVCacheEstimate(t *testing.T) {
	// qwen2.5:7b: 28 layers, 3584 wide, 28 heads, 4 KV heads: 56 KiB per
	// token, 224 MiB for a 4096 context.
	info := map[string]any{"general.architecture": "qwen2", "qwen2.block_count": 28.0, "qwen2.embedding_length": 3584.0,
		"qwen2.attention.head_count": 28.0, "qwen2.attention.head_count_kv": 4.0}
	got, ok := KVCacheBytesPerSlot(info, 4096)
	if !ok || got != 224<<20 {
		t.Errorf("KV cache = %d, %v; want %d", got, ok, 224<<20)
	}
	if _, ok := KVCacheBytesPerSlot(map[string]any{"general.architecture": "x"}, 4096); ok {
		t.Error("an estimate without the model's shape")
	}
}

func FuzzLogWatch(f *testing.F) {
	f.Add([]byte("msg=\"starting llama server\" cmd=\"runner --parallel 9 --ctx-size 1\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newLogWatch(io.Discard)
		w.Write(b)
		w.end()
		w.Runner()
		w.Tail()
	})
}

func TestWaitRunner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := newLogWatch(io.Discard)
	got := make(chan RunnerArgs, 1)
	go func() {
		ra, err := w.WaitRunner(ctx, 2)
		if err != nil {
			t.Error(err)
		}
		got <- ra
	}()
	w.Write([]byte("msg=\"starting llama server\" parallel=1 ctx-size=8\n"))
	w.Write([]byte("msg=\"starting llama server\" parallel=2 ctx-size=16\n"))
	if ra := <-got; ra.Parallel != 2 || ra.CtxSize != 16 {
		t.Errorf("second runner %+v, want parallel 2 ctx-size 16", ra)
	}
	if rs := w.Runners(); len(rs) != 2 || rs[0].Parallel != 1 {
		t.Errorf("Runners() = %+v", rs)
	}
	w.end()
	if _, err := w.WaitRunner(ctx, 3); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("WaitRunner after the output ended = %v, want an error", err)
	}
}
