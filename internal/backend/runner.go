package backend

import (
	"strconv"
	"strings"
)

// RunnerArgs are the arguments an engine started its inference runner with,
// read from the log line that starts it. They are what the engine really
// used, whatever was asked. Ollama writes
//
//	msg="starting llama server" cmd="… runner --ctx-size 8192 … --parallel 2 --port 33267"
//
// and the simulator writes the same message with the figures as keys:
//
//	msg="starting llama server" model=qwen parallel=4 ctx-size=16384
type RunnerArgs struct {
	Parallel  int    // --parallel: slots that decode at once
	CtxSize   int    // --ctx-size: the runner's whole context, num_ctx × parallel on Ollama
	BatchSize int    // --batch-size (Ollama only)
	Threads   int    // --threads (Ollama only)
	Port      int    // --port: where the runner listens (Ollama only)
	Model     string // --model: the GGUF blob (Ollama only)
	Cmd       string // the runner's whole command line (Ollama only)
	Line      string // the log line
}

// runnerMarker is in every log line that starts a runner; lines without it
// are rejected before any parsing.
const runnerMarker = `msg="starting llama server"`

// ParseRunnerLine reads the runner's arguments from one log line (Ollama's or
// the simulator's, in slog's key=value form); false when the line does not
// start a runner, is malformed, or has no parallelism.
func ParseRunnerLine(line string) (RunnerArgs, bool) {
	if !strings.Contains(line, runnerMarker) {
		return RunnerArgs{}, false
	}
	kv, ok := logfmt(line)
	if !ok || kv["msg"] != "starting llama server" {
		return RunnerArgs{}, false
	}
	a := RunnerArgs{Parallel: -1, Line: line}
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
				return RunnerArgs{}, false
			}
		}
	} else {
		for _, name := range []string{"parallel", "ctx-size"} {
			if val, ok := kv[name]; ok && !set(name, val) {
				return RunnerArgs{}, false
			}
		}
	}
	if a.Parallel < 0 {
		return RunnerArgs{}, false
	}
	return a, true
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
