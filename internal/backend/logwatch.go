package backend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

var (
	// Words with which Ollama, llama.cpp and the simulator say that memory
	// ran out, or that the runner died (the kernel's OOM killer).
	memoryWords = regexp.MustCompile(`(?i)out of memory|requires more system memory|cannot allocate memory|` +
		`failed to allocate|insufficient memory|exceeds? (the )?memory limit|\boom\b|signal: killed|runner process has terminated`)
)

// tailLines is how many log lines a LogWatch keeps for error messages.
const tailLines = 40

// LogWatch copies the engine's output to its log file and watches each line.
type LogWatch struct {
	out     io.Writer
	mu      sync.Mutex
	partial []byte
	tail    []string
	runners []RunnerArgs
	dropped int // runners dropped from the front of runners
	// defaultNumCtx and warnings are what the server said before a runner.
	defaultNumCtx int
	warnings      []string
	changed       chan struct{} // closed and replaced when a runner starts
	ended         chan struct{} // closed when the engine's output has ended
	memory        []string      // lines that speak of memory, bounded
	nMemory       int
}

func newLogWatch(out io.Writer) *LogWatch {
	return &LogWatch{out: out, changed: make(chan struct{}), ended: make(chan struct{})}
}

// Write writes p to the log file and scans its complete lines.
func (w *LogWatch) Write(p []byte) (int, error) {
	n, err := w.out.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64<<10 { // a line this long is not one we look for
		w.partial = w.partial[:0]
	}
	if err != nil {
		// Losing the log file must not stop the engine.
		return len(p), nil
	}
	return n, nil
}

// end scans the last, unterminated line once the output has ended.
func (w *LogWatch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
	close(w.ended)
}

func (w *LogWatch) line(s string) {
	s = strings.TrimRight(s, "\r")
	w.tail = append(w.tail, s)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
	if l, ok := ParseLogLine(s); ok {
		w.apply(l)
	}
	if memoryWords.MatchString(s) {
		w.nMemory++
		if len(w.memory) < 50 {
			w.memory = append(w.memory, s)
		}
	}
}

// apply adds what one log line told: a new runner, a figure of the last
// one, or a fact about the server that the next runner inherits.
func (w *LogWatch) apply(l LogLine) {
	if l.DefaultNumCtx > 0 {
		w.defaultNumCtx = l.DefaultNumCtx
	}
	if l.Warning != "" && len(w.warnings) < 20 {
		// Ollama warns before it starts the runner the warning is about.
		w.warnings = append(w.warnings, l.Warning)
	}
	if l.Source == "" {
		return
	}
	if l.Start || len(w.runners) == 0 {
		w.runners = append(w.runners, RunnerArgs{})
		if len(w.runners) > 64 {
			w.runners = w.runners[1:]
			w.dropped++
		}
	}
	r := &w.runners[len(w.runners)-1]
	r.merge(l.Source, l.Runner)
	if r.DefaultNumCtx == 0 {
		r.DefaultNumCtx = w.defaultNumCtx
	}
	for _, s := range w.warnings {
		if !contains(r.Warnings, s) {
			r.Warnings = append(r.Warnings, s)
		}
	}
	w.warnings = w.warnings[:0]
	close(w.changed)
	w.changed = make(chan struct{})
}

// Runner returns what the log says of the last runner started; false before
// one. Its Parallel is 0 until a line has told it.
func (w *LogWatch) Runner() (RunnerArgs, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.runners) == 0 {
		return RunnerArgs{}, false
	}
	return w.runners[len(w.runners)-1].clone(), true
}

// Runners lists the runners started so far, oldest first.
func (w *LogWatch) Runners() []RunnerArgs {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]RunnerArgs, len(w.runners))
	for i, r := range w.runners {
		out[i] = r.clone()
	}
	return out
}

// WaitRunner waits until at least n runners have started and told their
// parallelism, and returns the n-th (from 1). It fails when ctx ends or the
// engine's output ends first.
func (w *LogWatch) WaitRunner(ctx context.Context, n int) (RunnerArgs, error) {
	for {
		w.mu.Lock()
		if i := n - 1 - w.dropped; i >= 0 && i < len(w.runners) && w.runners[i].Parallel > 0 {
			r := w.runners[i].clone()
			w.mu.Unlock()
			return r, nil
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-w.ended:
			return RunnerArgs{}, fmt.Errorf("the engine's output ended before runner %d started", n)
		case <-ctx.Done():
			return RunnerArgs{}, fmt.Errorf("wait for runner %d: %w", n, ctx.Err())
		}
	}
}

// MemoryErrors returns how many log lines spoke of memory so far and the
// last such line; compare counts before and after a scenario.
func (w *LogWatch) MemoryErrors() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.memory) == 0 {
		return w.nMemory, ""
	}
	return w.nMemory, w.memory[len(w.memory)-1]
}

// Tail returns the last lines of the log.
func (w *LogWatch) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}

// SaysMemory reports whether a message speaks of memory running out, in the
// words Ollama, llama.cpp, the simulator or the kernel use.
func SaysMemory(s string) bool { return memoryWords.MatchString(s) }
