package backend

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Lines of Ollama v0.17.4 as it logs them (the load request is a Go struct
// printed with %+v).
const (
	v17Start   = `time=2026-12-01T13:00:00.000Z level=INFO source=server.go:431 msg="starting runner" cmd="/bin/ollama runner --model /state/models/blobs/sha256-42 --port 41234"`
	v17Load    = `time=2026-12-01T13:00:00.100Z level=INFO source=runner.go:895 msg=load request="{Operation:commit LoraPath:[] Parallel:4 BatchSize:512 FlashAttention:Auto KvSize:8192 KvCacheType: NumThreads:2 GPULayers:[] MultiUserCache:false ProjectorPath: MainGPU:0 UseMmap:false}"`
	v17Default = `time=2026-12-01T12:59:59.000Z level=INFO source=routes.go:1768 msg="vram-based default context" total_vram="0 B" default_num_ctx=4096`
	v17TooLong = `time=2026-12-01T12:59:59.900Z level=WARN source=server.go:169 msg="requested context size too large for model" num_ctx=8192 n_ctx_train=2048`
	v17Sched   = `time=2026-12-01T13:00:01.000Z level=DEBUG source=sched.go:578 msg="finished setting up" runner.name=registry.ollama.ai/library/tokentrace-tiny:latest runner.inference=cpu runner.size="58.5 MiB" runner.vram="0 B" runner.parallel=4 runner.pid=99 runner.model=/state/models/blobs/sha256-42 runner.num_ctx=2048`
)

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want LogLine
		ok   bool
	}{
		{"v0.17 start", v17Start, LogLine{Start: true, Source: "runner command", Runner: RunnerArgs{Port: 41234, Model: "/state/models/blobs/sha256-42"}}, true},
		{"v0.17 load request", v17Load, LogLine{Source: "load request", Runner: RunnerArgs{Parallel: 4, CtxSize: 8192, NumCtx: 2048,
			BatchSize: 512, Threads: 2, FlashAttention: "auto"}}, true},
		{"load request with a KV type", strings.Replace(v17Load, "KvCacheType: ", "KvCacheType:q8_0 ", 1), LogLine{Source: "load request",
			Runner: RunnerArgs{Parallel: 4, CtxSize: 8192, NumCtx: 2048, BatchSize: 512, Threads: 2, FlashAttention: "auto", KVCacheType: "q8_0"}}, true},
		{"v0.17 GPU discovery runner", `time=2026-12-01T13:48:06.140Z level=INFO source=server.go:431 msg="starting runner" cmd="/bin/ollama runner --ollama-engine --port 33967"`, LogLine{}, false},
		{"fit request is not the runner's", strings.Replace(v17Load, "Operation:commit", "Operation:fit", 1), LogLine{}, false},
		{"load request without parallel", strings.Replace(v17Load, "Parallel:4", "Parallel:x", 1), LogLine{}, false},
		{"load request not a struct", `msg=load request=commit`, LogLine{}, false},
		{"n_seq_max", "llama_context: n_seq_max     = 4", LogLine{Source: "llama_context", Runner: RunnerArgs{Parallel: 4}}, true},
		{"n_ctx", "llama_context: n_ctx         = 8192", LogLine{Source: "llama_context", Runner: RunnerArgs{Cells: 8192}}, true},
		{"n_ctx_seq", "llama_context: n_ctx_seq     = 2048", LogLine{Source: "llama_context", Runner: RunnerArgs{CtxPerSlot: 2048}}, true},
		{"v0.6 n_ctx_per_seq", "llama_init_from_model: n_ctx_per_seq = 2048", LogLine{Source: "llama_context", Runner: RunnerArgs{CtxPerSlot: 2048}}, true},
		{"flash auto", "llama_context: flash_attn    = auto", LogLine{Source: "llama_context", Runner: RunnerArgs{FlashAttention: "auto"}}, true},
		{"flash decided", "llama_context: Flash Attention was auto, set to disabled", LogLine{Source: "llama_context", Runner: RunnerArgs{FlashAttention: "disabled"}}, true},
		{"v0.6 flash off", "llama_init_from_model: flash_attn    = 0", LogLine{Source: "llama_context", Runner: RunnerArgs{FlashAttention: "disabled"}}, true},
		{"flash nonsense", "llama_context: flash_attn    = maybe", LogLine{}, false},
		{"other llama_context line", "llama_context: n_batch       = 512", LogLine{}, false},
		{"n_seq_max zero", "llama_context: n_seq_max     = 0", LogLine{}, false},
		{"kv cache", "llama_kv_cache: size =   32.00 MiB (  8192 cells,   4 layers,  4/4 seqs), K (f16):   16.00 MiB, V (f16):   16.00 MiB",
			LogLine{Source: "kv cache", Runner: RunnerArgs{KVBytes: 32 << 20, KVCacheType: "f16"}}, true},
		{"v0.6 kv init", "llama_kv_cache_init: kv_size = 8192, offload = 1, type_k = 'q8_0', type_v = 'q8_0', n_layer = 4, can_shift = 1",
			LogLine{Source: "kv cache", Runner: RunnerArgs{KVCacheType: "q8_0"}}, true},
		{"v0.6 KV self size", "llama_init_from_model: KV self size  =   32.00 MiB, K (f16):   16.00 MiB, V (f16):   16.00 MiB",
			LogLine{Source: "llama_context", Runner: RunnerArgs{KVBytes: 32 << 20, KVCacheType: "f16"}}, true},
		{"kv buffer line", "llama_kv_cache:        CPU KV buffer size =    32.00 MiB", LogLine{}, false},
		{"kv cache bad size", "llama_kv_cache: size = lots MiB, K (f16): 1 MiB", LogLine{}, false},
		{"scheduler", v17Sched, LogLine{Source: "scheduler", Runner: RunnerArgs{Parallel: 4, NumCtx: 2048}}, true},
		{"default context", v17Default, LogLine{DefaultNumCtx: 4096}, true},
		{"default context bad", strings.Replace(v17Default, "=4096", "=lots", 1), LogLine{}, false},
		{"context too large", v17TooLong, LogLine{Warning: "requested context size too large for model: num_ctx 8192 cut to the trained 2048"}, true},
		{"unrelated", `time=x level=INFO msg="llama runner started in 0.26 seconds"`, LogLine{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseLogLine(tc.line)
			got.Runner.Line, got.Runner.Cmd = "", ""
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLogLine = %+v, %v\nwant            %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A v0.17 log read in order: the warning and the default context before the
// runner starts are the runner's; two lines that disagree are a conflict.
func TestLogWatchMergesV17Lines(t *testing.T) {
	lines := []string{v17Default, v17TooLong, v17Start, v17Load,
		"llama_context: n_seq_max     = 4", "llama_context: n_ctx         = 8192", "llama_context: n_ctx_seq     = 2048",
		"llama_context: flash_attn    = auto",
		"llama_kv_cache: size =   32.00 MiB (  8192 cells,   4 layers,  4/4 seqs), K (f16):   16.00 MiB, V (f16):   16.00 MiB",
		"llama_context: Flash Attention was auto, set to enabled", v17Sched}
	w := newLogWatch(io.Discard)
	w.Write([]byte(strings.Join(lines, "\n") + "\n"))
	r, ok := w.Runner()
	if !ok {
		t.Fatal("no runner")
	}
	want := RunnerArgs{Parallel: 4, CtxSize: 8192, NumCtx: 2048, Cells: 8192, CtxPerSlot: 2048, BatchSize: 512, Threads: 2,
		KVCacheType: "f16", KVBytes: 32 << 20, FlashAttention: "enabled", DefaultNumCtx: 4096,
		Warnings: []string{"requested context size too large for model: num_ctx 8192 cut to the trained 2048"},
		From:     []string{"runner command", "load request", "llama_context", "kv cache", "scheduler"},
		Port:     41234, Model: "/state/models/blobs/sha256-42"}
	r.Line, r.Cmd = "", ""
	if !reflect.DeepEqual(r, want) {
		t.Errorf("runner %+v\nwant   %+v", r, want)
	}
	if s := r.Summary(); s != "4 slots × 2048 tokens (8192 in all), KV cache f16 32.0 MiB, flash attention enabled, default context 4096, "+
		"warning: requested context size too large for model: num_ctx 8192 cut to the trained 2048" {
		t.Errorf("Summary = %q", s)
	}

	w = newLogWatch(io.Discard)
	w.Write([]byte(v17Start + "\n" + v17Load + "\nllama_context: n_seq_max     = 1\n"))
	r, _ = w.Runner()
	if r.Parallel != 4 || !reflect.DeepEqual(r.Conflicts, []string{"parallel: 4, but the llama_context line says 1"}) {
		t.Errorf("conflicting lines: %+v", r)
	}
	// A second runner starts afresh; the first is kept.
	w.Write([]byte(v17Start + "\n" + strings.Replace(v17Load, "Parallel:4", "Parallel:2", 1) + "\n"))
	if rs := w.Runners(); len(rs) != 2 || rs[1].Parallel != 2 || len(rs[1].Conflicts) > 0 || rs[0].Parallel != 4 {
		t.Errorf("runners %+v", rs)
	}
}

// Captured logs of both generations serving the generated model with a
// context of 1024 at p = 1, 2 and 4 (`make capture-ollama-logs`).
func TestCapturedRunnerLogs(t *testing.T) {
	for _, version := range []string{"ollama-v0.17.4", "ollama-v0.6.5"} {
		for _, p := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s/p%d", version, p), func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join("testdata", version, fmt.Sprintf("p%d.log", p)))
				if err != nil {
					t.Fatal(err)
				}
				w := newLogWatch(io.Discard)
				w.Write(b)
				w.end()
				rs := w.Runners()
				if len(rs) != 1 {
					t.Fatalf("%d runners, want 1", len(rs))
				}
				r := rs[0]
				if r.Parallel != p || r.SlotContext() != 1024 || r.CtxSize != 1024*p || r.Cells < 1024*p || len(r.Conflicts) > 0 {
					t.Errorf("runner %+v, want %d slots of 1024", r, p)
				}
				if r.KVCacheType != "f16" || r.KVBytes <= 0 || r.FlashAttention == "" || r.CtxPerSlot < 1024 {
					t.Errorf("runner %+v: KV cache, flash attention or llama.cpp's context per sequence missing", r)
				}
				if version == "ollama-v0.17.4" && (r.DefaultNumCtx != 4096 || !slices.Contains(r.From, "load request")) {
					t.Errorf("v0.17.4 runner %+v: want the default context 4096 and the load request", r)
				}
			})
		}
	}
}

func FuzzParseLogLine(f *testing.F) {
	for _, s := range []string{v17Start, v17Load, v17Default, v17TooLong, v17Sched, "llama_context: n_seq_max     = 4",
		"llama_kv_cache: size =   32.00 MiB (  8192 cells,   4 layers,  4/4 seqs), K (f16):   16.00 MiB, V (f16):   16.00 MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		l, ok := ParseLogLine(line)
		r := l.Runner
		if !ok && !reflect.DeepEqual(l, LogLine{}) {
			t.Fatalf("rejected %q but returned %+v", line, l)
		}
		if r.Parallel < 0 || r.CtxSize < 0 || r.NumCtx < 0 || r.Cells < 0 || r.CtxPerSlot < 0 || r.KVBytes < 0 || l.DefaultNumCtx < 0 {
			t.Fatalf("negative figure from %q: %+v", line, l)
		}
		if l.Start && !strings.Contains(line, runnerMarker) && !strings.Contains(line, runnerMarkerV17) {
			t.Fatalf("start without a start marker: %q", line)
		}
	})
}

// v0.17.4 asked for a context of 4096 on a model trained for 2048: it cut
// the context and warned; the runner has 2048.
func TestCapturedTruncatedContext(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "ollama-v0.17.4", "p1-ctx4096.log"))
	if err != nil {
		t.Fatal(err)
	}
	w := newLogWatch(io.Discard)
	w.Write(b)
	r, ok := w.Runner()
	if !ok || r.Parallel != 1 || r.SlotContext() != 2048 ||
		!reflect.DeepEqual(r.Warnings, []string{"requested context size too large for model: num_ctx 4096 cut to the trained 2048"}) {
		t.Errorf("runner %+v, %v: want one slot of 2048 and the engine's warning", r, ok)
	}
}
