package backend

import (
	"fmt"
	"strconv"
	"strings"
)

// RunnerArgs is what an engine's log says one inference runner was started
// with: what it really used, whatever was asked. Two generations of Ollama
// log it differently (see ParseLogLine); the simulator writes v0.6.5's line
// with the figures as keys.
type RunnerArgs struct {
	// Parallel is the slots that decode at once (--parallel, the load
	// request's Parallel, llama.cpp's n_seq_max, the scheduler's
	// runner.parallel).
	Parallel int `json:"parallel"`
	// CtxSize is the whole context Ollama asked the runner for, num_ctx ×
	// parallel (--ctx-size, the load request's KvSize); llama.cpp's n_ctx
	// when the log has no request.
	CtxSize int `json:"ctx_size"`
	// NumCtx is the context of one slot as Ollama asked for it (CtxSize /
	// Parallel from the request, or the scheduler's runner.num_ctx).
	NumCtx int `json:"num_ctx,omitempty"`
	// Cells and CtxPerSlot are the KV cells llama.cpp allocated and the
	// context each sequence gets (n_ctx and n_ctx_seq, or n_ctx_per_seq
	// before v0.17): padded up to a multiple of 256 on v0.17.
	Cells      int `json:"cells,omitempty"`
	CtxPerSlot int `json:"ctx_per_slot,omitempty"`
	BatchSize  int `json:"batch_size,omitempty"`
	Threads    int `json:"threads,omitempty"`
	// KVCacheType is the K cache's element type ("f16", "q8_0"); KVBytes
	// the whole KV cache llama.cpp allocated.
	KVCacheType string `json:"kv_cache_type,omitempty"`
	KVBytes     int64  `json:"kv_bytes,omitempty"`
	// FlashAttention is "enabled" or "disabled" once llama.cpp decided;
	// "auto" or Ollama's request when nothing later said.
	FlashAttention string `json:"flash_attention,omitempty"`
	// DefaultNumCtx is the context v0.17 chose for requests that set none
	// (from its free VRAM); 0 when the log did not say.
	DefaultNumCtx int `json:"default_num_ctx,omitempty"`
	// Warnings are what the engine said it changed or feared, e.g. a
	// context cut to the model's trained length.
	Warnings []string `json:"warnings,omitempty"`
	// Conflicts are figures two log lines disagree on.
	Conflicts []string `json:"conflicts,omitempty"`
	// From lists the kinds of line the figures came from.
	From []string `json:"from,omitempty"`

	Port  int    `json:"-"` // --port: where the runner listens (Ollama only)
	Model string `json:"-"` // --model: the GGUF blob (Ollama only)
	Cmd   string `json:"-"` // the runner's command line (Ollama only)
	Line  string `json:"-"` // the line that started the runner
}

// LogLine is what one line of an engine's log tells about its runners.
type LogLine struct {
	// Start is true when the line starts a new runner.
	Start bool
	// Source names the kind of line ("runner command", "load request",
	// "llama_context", "kv cache", "scheduler"); empty for lines about the
	// server rather than a runner.
	Source string
	// Runner holds the figures the line gives; zero fields say nothing.
	Runner RunnerArgs
	// DefaultNumCtx and Warning are about the server or the next runner.
	DefaultNumCtx int
	Warning       string
}

// The messages that start a runner: Ollama before v0.17 (and the
// simulator), then v0.17.
const (
	runnerMarker    = `msg="starting llama server"`
	runnerMarkerV17 = `msg="starting runner"`
)

// ParseRunnerLine reads a line that starts a runner and gives its
// parallelism (Ollama before v0.17, the simulator); false otherwise. v0.17's
// runners are read from several lines: see ParseLogLine.
func ParseRunnerLine(line string) (RunnerArgs, bool) {
	l, ok := ParseLogLine(line)
	if !ok || !l.Start || l.Runner.Parallel <= 0 {
		return RunnerArgs{}, false
	}
	return l.Runner, true
}

// ParseLogLine reads one line of an engine's log. It knows
//
//	msg="starting llama server" cmd="… runner --ctx-size 8192 … --parallel 2 --port 33267"   (v0.6)
//	msg="starting llama server" model=qwen parallel=4 ctx-size=16384                        (simulator)
//	msg="starting runner" cmd="… runner --model /blob --port 41234"                          (v0.17)
//	msg=load request="{Operation:commit … Parallel:4 BatchSize:512 FlashAttention:Auto KvSize:8192 KvCacheType: …}"
//	llama_context: n_seq_max = 4, n_ctx = 8192, n_ctx_seq = 2048, flash_attn = auto
//	llama_context: Flash Attention was auto, set to enabled
//	llama_kv_cache: size = 32.00 MiB (8192 cells, 4 layers, 4/4 seqs), K (f16): 16.00 MiB, V (f16): 16.00 MiB
//	msg="finished setting up" runner.parallel=4 … runner.num_ctx=2048                       (v0.17, OLLAMA_DEBUG)
//	msg="vram-based default context" total_vram="0 B" default_num_ctx=4096                 (v0.17)
//	msg="requested context size too large for model" num_ctx=8192 n_ctx_train=2048         (v0.17)
//
// and v0.6's llama.cpp lines (llama_init_from_model: n_ctx_per_seq, flash_attn = 0,
// llama_kv_cache_init: type_k = 'f16', KV self size). False when the line
// tells nothing about runners or is malformed.
func ParseLogLine(line string) (LogLine, bool) {
	switch {
	case strings.Contains(line, runnerMarker) || strings.Contains(line, runnerMarkerV17):
		return parseStart(line)
	case strings.Contains(line, "msg=load ") || strings.Contains(line, `msg="load"`):
		return parseLoadRequest(line)
	case strings.HasPrefix(line, "llama_context:") || strings.HasPrefix(line, "llama_init_from_model:") ||
		strings.HasPrefix(line, "llama_new_context_with_model:"):
		return parseLlamaContext(line)
	case strings.HasPrefix(line, "llama_kv_cache"):
		return parseKVCache(line)
	case strings.Contains(line, `msg="finished setting up"`):
		return parseSched(line)
	case strings.Contains(line, `msg="vram-based default context"`):
		kv, ok := logfmt(line)
		n, err := strconv.Atoi(kv["default_num_ctx"])
		if !ok || err != nil || n <= 0 {
			return LogLine{}, false
		}
		return LogLine{DefaultNumCtx: n}, true
	case strings.Contains(line, `msg="requested context size too large for model"`):
		kv, ok := logfmt(line)
		if !ok {
			return LogLine{}, false
		}
		return LogLine{Warning: fmt.Sprintf("requested context size too large for model: num_ctx %s cut to the trained %s",
			kv["num_ctx"], kv["n_ctx_train"])}, true
	}
	return LogLine{}, false
}

// parseStart reads the line that starts a runner.
func parseStart(line string) (LogLine, bool) {
	kv, ok := logfmt(line)
	if !ok || (kv["msg"] != "starting llama server" && kv["msg"] != "starting runner") {
		return LogLine{}, false
	}
	a := RunnerArgs{Line: line}
	ints := map[string]*int{"parallel": &a.Parallel, "ctx-size": &a.CtxSize,
		"batch-size": &a.BatchSize, "threads": &a.Threads, "port": &a.Port}
	set := func(name, val string) bool {
		dst, ok := ints[name]
		if !ok {
			if name == "model" {
				a.Model = val
			}
			return true
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return false
		}
		*dst = n
		return true
	}
	if cmd, isOllama := kv["cmd"]; isOllama {
		a.Cmd = cmd
		fields := strings.Fields(cmd)
		for j, f := range fields {
			name, ok := strings.CutPrefix(f, "--")
			if !ok {
				continue
			}
			name, val, inline := strings.Cut(name, "=")
			if !inline {
				if j+1 == len(fields) {
					continue
				}
				val = fields[j+1]
			}
			if !set(name, val) {
				return LogLine{}, false
			}
		}
	} else {
		for _, name := range []string{"parallel", "ctx-size"} {
			if val, ok := kv[name]; ok && !set(name, val) {
				return LogLine{}, false
			}
		}
	}
	if kv["msg"] == "starting llama server" && a.Parallel <= 0 {
		return LogLine{}, false // that generation always says it
	}
	if kv["msg"] == "starting runner" && a.Model == "" {
		// v0.17 also starts runners without a model to discover GPUs.
		return LogLine{}, false
	}
	if a.Parallel > 0 && a.CtxSize > 0 {
		a.NumCtx = a.CtxSize / a.Parallel
	}
	return LogLine{Start: true, Source: "runner command", Runner: a}, true
}

// parseLoadRequest reads v0.17's load request, a Go struct printed with %+v:
// request="{Operation:commit LoraPath:[] Parallel:4 … KvCacheType: NumThreads:2 …}".
// Only the commit (the one the runner keeps) counts.
func parseLoadRequest(line string) (LogLine, bool) {
	kv, ok := logfmt(line)
	req, has := kv["request"]
	if !ok || kv["msg"] != "load" || !has || !strings.HasPrefix(req, "{") || !strings.HasSuffix(req, "}") {
		return LogLine{}, false
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(req[1 : len(req)-1]) {
		if name, val, ok := strings.Cut(f, ":"); ok {
			fields[name] = val
		}
	}
	if fields["Operation"] != "commit" {
		return LogLine{}, false
	}
	var a RunnerArgs
	for name, dst := range map[string]*int{"Parallel": &a.Parallel, "KvSize": &a.CtxSize,
		"BatchSize": &a.BatchSize, "NumThreads": &a.Threads} {
		n, err := strconv.Atoi(fields[name])
		if err != nil || n < 0 {
			return LogLine{}, false
		}
		*dst = n
	}
	if a.Parallel == 0 {
		return LogLine{}, false
	}
	a.NumCtx = a.CtxSize / a.Parallel
	a.KVCacheType = strings.ToLower(fields["KvCacheType"])
	a.FlashAttention = strings.ToLower(fields["FlashAttention"])
	return LogLine{Source: "load request", Runner: a}, true
}

// parseLlamaContext reads llama.cpp's "llama_context: name = value" lines
// (llama_init_from_model: before v0.17) and its flash-attention decision.
func parseLlamaContext(line string) (LogLine, bool) {
	_, rest, _ := strings.Cut(line, ":")
	rest = strings.TrimSpace(rest)
	switch rest {
	case "Flash Attention was auto, set to enabled":
		return LogLine{Source: "llama_context", Runner: RunnerArgs{FlashAttention: "enabled"}}, true
	case "Flash Attention was auto, set to disabled":
		return LogLine{Source: "llama_context", Runner: RunnerArgs{FlashAttention: "disabled"}}, true
	}
	name, val, ok := strings.Cut(rest, "=")
	if !ok {
		return LogLine{}, false
	}
	name, val = strings.TrimSpace(name), strings.TrimSpace(val)
	if name == "KV self size" { // before v0.17: KV self size = 32.00 MiB, K (f16): 16.00 MiB, V (f16): …
		l, ok := parseKVCache("llama_kv_cache: size = " + val)
		l.Source = "llama_context"
		return l, ok
	}
	var a RunnerArgs
	if name == "flash_attn" {
		switch val {
		case "1", "enabled":
			a.FlashAttention = "enabled"
		case "0", "disabled":
			a.FlashAttention = "disabled"
		case "auto":
			a.FlashAttention = "auto"
		default:
			return LogLine{}, false
		}
		return LogLine{Source: "llama_context", Runner: a}, true
	}
	dst := map[string]*int{"n_seq_max": &a.Parallel, "n_ctx": &a.Cells, "n_ctx_seq": &a.CtxPerSlot,
		"n_ctx_per_seq": &a.CtxPerSlot}[name]
	if dst == nil {
		return LogLine{}, false
	}
	n, err := strconv.Atoi(val)
	if err != nil || n <= 0 {
		return LogLine{}, false
	}
	*dst = n
	return LogLine{Source: "llama_context", Runner: a}, true
}

// parseKVCache reads llama.cpp's KV cache summary:
//
//	llama_kv_cache: size =   32.00 MiB (  8192 cells,   4 layers,  4/4 seqs), K (f16):   16.00 MiB, V (f16):   16.00 MiB
//	llama_kv_cache_init: kv_size = 8192, offload = 1, type_k = 'f16', type_v = 'f16', n_layer = 4, can_shift = 1
func parseKVCache(line string) (LogLine, bool) {
	var a RunnerArgs
	switch {
	case strings.Contains(line, " size = ") && strings.Contains(line, "K ("):
		_, after, _ := strings.Cut(line, " size = ")
		mib, _, _ := strings.Cut(strings.TrimSpace(after), " MiB")
		f, err := strconv.ParseFloat(mib, 64)
		if err != nil || !(f >= 0 && f < 1<<30) { // MiB: anything past a PiB is not a KV cache
			return LogLine{}, false
		}
		a.KVBytes = int64(f * (1 << 20))
		_, k, _ := strings.Cut(line, "K (")
		typ, _, ok := strings.Cut(k, ")")
		if !ok || typ == "" {
			return LogLine{}, false
		}
		a.KVCacheType = typ
	case strings.Contains(line, "type_k = '"):
		_, k, _ := strings.Cut(line, "type_k = '")
		typ, _, ok := strings.Cut(k, "'")
		if !ok || typ == "" {
			return LogLine{}, false
		}
		a.KVCacheType = typ
	default:
		return LogLine{}, false
	}
	return LogLine{Source: "kv cache", Runner: a}, true
}

// parseSched reads v0.17's scheduler line (logged with OLLAMA_DEBUG=1 only).
func parseSched(line string) (LogLine, bool) {
	kv, ok := logfmt(line)
	if !ok {
		return LogLine{}, false
	}
	var a RunnerArgs
	for name, dst := range map[string]*int{"runner.parallel": &a.Parallel, "runner.num_ctx": &a.NumCtx} {
		n, err := strconv.Atoi(kv[name])
		if err != nil || n <= 0 {
			return LogLine{}, false
		}
		*dst = n
	}
	return LogLine{Source: "scheduler", Runner: a}, true
}

// merge adds what one line told about this runner; a figure two lines give
// differently is kept from the first and noted in Conflicts.
func (a *RunnerArgs) merge(src string, b RunnerArgs) {
	ints := []struct {
		name     string
		dst, val *int
	}{{"parallel", &a.Parallel, &b.Parallel}, {"whole context", &a.CtxSize, &b.CtxSize},
		{"context per slot", &a.NumCtx, &b.NumCtx}, {"cells", &a.Cells, &b.Cells},
		{"context per sequence", &a.CtxPerSlot, &b.CtxPerSlot}, {"batch size", &a.BatchSize, &b.BatchSize},
		{"threads", &a.Threads, &b.Threads}, {"port", &a.Port, &b.Port}}
	for _, f := range ints {
		switch {
		case *f.val == 0:
		case *f.dst == 0:
			*f.dst = *f.val
		case *f.dst != *f.val:
			a.conflict(fmt.Sprintf("%s: %d, but the %s line says %d", f.name, *f.dst, src, *f.val))
		}
	}
	if b.KVCacheType != "" && (a.KVCacheType == "" || src == "kv cache") {
		a.KVCacheType = b.KVCacheType // llama.cpp's allocation beats Ollama's request
	}
	if b.KVBytes > 0 {
		a.KVBytes = b.KVBytes
	}
	// Later lines decide: the request says auto, llama.cpp says what it did.
	if b.FlashAttention != "" && (a.FlashAttention == "" || b.FlashAttention != "auto") {
		a.FlashAttention = b.FlashAttention
	}
	for _, x := range []struct{ dst, val *string }{{&a.Model, &b.Model}, {&a.Cmd, &b.Cmd}, {&a.Line, &b.Line}} {
		if *x.dst == "" {
			*x.dst = *x.val
		}
	}
	if src != "" && !contains(a.From, src) {
		a.From = append(a.From, src)
	}
}

// clone copies a with its own slices.
func (a RunnerArgs) clone() RunnerArgs {
	a.Warnings = append([]string(nil), a.Warnings...)
	a.Conflicts = append([]string(nil), a.Conflicts...)
	a.From = append([]string(nil), a.From...)
	return a
}

func (a *RunnerArgs) conflict(s string) {
	if len(a.Conflicts) < 8 && !contains(a.Conflicts, s) {
		a.Conflicts = append(a.Conflicts, s)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SlotContext is the context each slot has: Ollama's per-slot request, else
// llama.cpp's per-sequence context, else the whole context shared out.
func (a RunnerArgs) SlotContext() int {
	switch {
	case a.NumCtx > 0:
		return a.NumCtx
	case a.CtxPerSlot > 0:
		return a.CtxPerSlot
	case a.Parallel > 0:
		return a.CtxSize / a.Parallel
	}
	return 0
}

// Summary is the runner in one line: "4 slots × 2048 tokens (8192 in all),
// KV cache f16 32.0 MiB, flash attention disabled, default context 4096".
func (a RunnerArgs) Summary() string {
	parts := []string{fmt.Sprintf("%d slots × %d tokens (%d in all)", a.Parallel, a.SlotContext(), a.CtxSize)}
	if a.CtxPerSlot > 0 && a.CtxPerSlot != a.SlotContext() {
		parts = append(parts, fmt.Sprintf("llama.cpp: %d per sequence", a.CtxPerSlot))
	}
	if a.KVCacheType != "" || a.KVBytes > 0 {
		kv := "KV cache"
		if a.KVCacheType != "" {
			kv += " " + a.KVCacheType
		}
		if a.KVBytes > 0 {
			kv += fmt.Sprintf(" %.1f MiB", float64(a.KVBytes)/(1<<20))
		}
		parts = append(parts, kv)
	}
	if a.FlashAttention != "" {
		parts = append(parts, "flash attention "+a.FlashAttention)
	}
	if a.DefaultNumCtx > 0 {
		parts = append(parts, fmt.Sprintf("default context %d", a.DefaultNumCtx))
	}
	for _, w := range a.Warnings {
		parts = append(parts, "warning: "+w)
	}
	for _, c := range a.Conflicts {
		parts = append(parts, "conflict: "+c)
	}
	return strings.Join(parts, ", ")
}

// logfmt splits a slog text line into its key=value pairs, unquoting quoted
// values; words without "=" are skipped. False when a quoted value is
// malformed.
func logfmt(line string) (map[string]string, bool) {
	kv := map[string]string{}
	for s := line; s != ""; {
		s = strings.TrimLeft(s, " \t")
		end := strings.IndexAny(s, " \t=")
		if end < 0 || s[end] != '=' {
			if end < 0 {
				break
			}
			s = s[end:]
			continue
		}
		key := s[:end]
		s = s[end+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, false
			}
			if val, err = strconv.Unquote(q); err != nil {
				return nil, false
			}
			s = s[len(q):]
		} else {
			i := strings.IndexAny(s, " \t")
			if i < 0 {
				i = len(s)
			}
			val, s = s[:i], s[i:]
		}
		kv[key] = val
	}
	return kv, true
}
